"""Analysis tools: Hessian curvature, loss landscapes, worst-case sharpness, plots, reports."""

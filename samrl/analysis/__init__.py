"""Measuring models: Hessian curvature, loss landscapes, worst-case and post-hoc sharpness.

What is read from run directories (tables, figures, reports, statistics) is samrl.results'.
"""

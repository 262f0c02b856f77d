# samrl: the two commands are `make demo` and `make test`; both install into .venv first.
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
# CPU build by default (found on local disk here, small elsewhere). GPU users:
#   make install TORCH_SPEC=torch TORCH_INDEX=https://download.pytorch.org/whl/cu126
# (any torch >= 2.5 works; the CUDA tag must match the driver).
TORCH_SPEC ?= torch==2.13.0
TORCH_INDEX ?=
PYTEST_ARGS ?=
JOBS ?= 2
SWEEP_ARGS ?=

.PHONY: rerun-avx2 claims-20evals corruption-pilot corruption-15k mujoco-policies mujoco-pilot mujoco mujoco-corruption install demo test test-fast lint bench reproduce-smoke reproduce-pendulum reproduce-mujoco reproduce-d4rl pilot seed-table study study-smoke corruption selection selection-smoke clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q "$(TORCH_SPEC)" $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	$(BIN)/pip install -q -e ".[dev]"
	touch $@

install: $(VENV)/.installed

demo: install
	$(BIN)/samrl train --config configs/demo.yaml --overwrite

test: install
	$(BIN)/python -m pytest -n $(JOBS) --timeout=900 -q $(PYTEST_ARGS)

test-fast: install
	$(BIN)/python -m pytest -n $(JOBS) -q -m "not slow" $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check samrl tests benchmarks
	$(BIN)/ruff format --check samrl tests benchmarks

bench: install
	BIN=$(BIN) scripts/bench.sh

# Study reproductions. A sweep exits 1 when a run diverged; the tables are printed regardless.
reproduce-smoke: install   ## 12 runs (td3_plus_bc, cql x rho 0/0.01/0.05 x 2 seeds): 90 s measured, 2 idle cores
	BIN=$(BIN) scripts/reproduce.sh configs/sweeps/smoke.yaml runs/sweeps/smoke --jobs $(JOBS) $(SWEEP_ARGS)

reproduce-pendulum: install   ## 60 runs (cql, iql, td3_plus_bc x 4 rho x 5 seeds): ~15 h, 2 cores (estimate)
	BIN=$(BIN) scripts/reproduce.sh configs/sweeps/pendulum.yaml runs/sweeps/pendulum --jobs $(JOBS) $(SWEEP_ARGS)

# The evidence (issue 20), committed under results/: the pilot that chose the budgets, the seed's
# experiment with statistics, and the per-network rho study. Sweeps resume: run a target again
# to continue. Costs are measured on this 2-core machine (see README "The shipped evidence").
pilot: install   ## 24 Adam runs x 10k updates (9 algorithms, 2 seeds): 1.3 h measured at 2 jobs, load 4-16
	-$(BIN)/samrl sweep configs/sweeps/pilot.yaml --jobs $(JOBS) $(SWEEP_ARGS)
	$(BIN)/samrl report results/pilot

seed-table: study   ## 135 runs x 5000 updates (6 algorithms x optimizer per network, 5 seeds); IQL, CQL from the study: 1.7 h measured at 2 jobs, load 3
	-$(BIN)/samrl sweep configs/sweeps/seed_table.yaml --jobs $(JOBS) $(SWEEP_ARGS)
	$(BIN)/samrl seed-table results/seed-table --also results/study
	$(BIN)/samrl report results/seed-table

study: install   ## 150 runs x 5000 updates (TD3+BC, IQL, CQL x SAM per network x rho + Adam, 5 seeds): 4.1 h measured at 2 jobs, load 3-9
	-$(BIN)/samrl sweep configs/sweeps/study.yaml --jobs $(JOBS) $(SWEEP_ARGS)
	$(BIN)/samrl sharpness results/study --rho 0.05 --n-batches 4 --batch-size 64
	$(BIN)/samrl report results/study

# Corrupted data (issue 21): IQL / RIQL x Adam / SAM on the value networks x clean and three
# corruptions of pendulum-replay (RIQL's protocol, rate 0.3), 5 seeds.
corruption: install   ## 80 runs x 5000 updates: 1.8 h measured at 2 jobs, load 3-16 (sum of run times / 2)
	-$(BIN)/samrl sweep configs/sweeps/corruption.yaml --jobs $(JOBS) $(SWEEP_ARGS)
	$(BIN)/samrl corruption-table results/corruption
	$(BIN)/samrl report results/corruption

# The same study, tiny (12 runs x 20 steps, rho 0.05, one seed): checks the pipeline in minutes
# (106 s measured on idle cores, load 0.9; 7.3 min at load 4).
STUDY_SMOKE = --name study-smoke --out runs/sweeps --seeds 0 --grid optim.rho=0.05 \
	--set train.n_steps=20 --set train.n_steps_per_epoch=10 --set dataset.size=2000 \
	--set train.eval_episodes=1
study-smoke: install
	-$(BIN)/samrl sweep configs/sweeps/study.yaml $(STUDY_SMOKE) --jobs $(JOBS)
	$(BIN)/samrl sharpness runs/sweeps/study-smoke --rho 0.05 --n-batches 1 --batch-size 16
	$(BIN)/samrl report runs/sweeps/study-smoke

# Choosing checkpoints without the environment (issue 32): TD3+BC, IQL, CQL x Adam / SAM on the
# critic x 5 seeds on pendulum-replay, a checkpoint (~240 KiB) and a 10-episode evaluation at each
# of 20 points; then every signal of every checkpoint, scored against the evaluations.
selection: install   ## 30 runs x 5000 updates: ~1 h at 2 jobs + ~15 min select (estimate: one TD3+BC run took 108 s, its select 27 s)
	-$(BIN)/samrl sweep configs/sweeps/selection.yaml --jobs $(JOBS) $(SWEEP_ARGS)
	$(BIN)/samrl select results/selection

# The same, tiny (12 runs x 40 updates, 2 seeds, a checkpoint every 10): the pipeline end to
# end; the sweep took 2 min and `samrl select` 32 s on 2 cores at load 7.
SELECTION_SMOKE = --name selection-smoke --out runs/sweeps --seeds 0-1 \
	--set train.n_steps=40 --set train.n_steps_per_epoch=10 --set dataset.size=4000 \
	--set train.eval_episodes=2 --set algo.params.batch_size=32
selection-smoke: install
	-$(BIN)/samrl sweep configs/sweeps/selection.yaml $(SELECTION_SMOKE) --jobs $(JOBS)
	$(BIN)/samrl select runs/sweeps/selection-smoke

# A whole cell re-run with other last bits (issue 31): SAC's all-Adam and SAM-on-the-actor
# cells of the seed table trained again from their committed config.yaml with MKL_CBWR=AVX2
# (MKL's AVX2 code paths on an AVX-512 machine), compared by the README's rerun-elsewhere block.
RERUN_CELLS = grep -E '^sac_pendulum-replay_(adam|sam-rho0.05_networks-actor)_s'
rerun-avx2: install   ## 10 runs x 5000 updates: about 25 min at load 4
	for run in $$(ls results/seed-table/runs | $(RERUN_CELLS)); do \
		MKL_CBWR=AVX2 $(BIN)/samrl train --config results/seed-table/runs/$$run/config.yaml \
			--set output.run_dir=results/rerun-avx2/runs/$$run --quiet || exit 1; \
	done
	$(BIN)/samrl seed-table results/rerun-avx2

# The pendulum claims with 20 evaluations per run (issue 31): the seed table's and the corruption
# study's claimed cells and their Adam baselines, trained again evaluating every 250 updates
# (results/seed-table-20evals/, results/corruption-20evals/); the README's claims-20evals block
# sets them beside the shipped 3-evaluation headline.
claims-20evals: install   ## 90 + 20 runs x 5000 updates (pendulum, 64-64)
	-$(BIN)/samrl sweep configs/sweeps/seed_table_20evals.yaml --jobs $(JOBS) $(SWEEP_ARGS)
	$(BIN)/samrl seed-table results/seed-table-20evals
	$(BIN)/samrl report results/seed-table-20evals
	-$(BIN)/samrl sweep configs/sweeps/corruption_20evals.yaml --jobs $(JOBS) $(SWEEP_ARGS)
	$(BIN)/samrl corruption-table results/corruption-20evals
	$(BIN)/samrl report results/corruption-20evals

# Where corrupted Adam levels off on pendulum (issue 31): IQL and RIQL, 20k updates, seeds 100-101.
corruption-pilot: install   ## 8 runs x 20k updates (pendulum, 64-64)
	-$(BIN)/samrl sweep configs/sweeps/corruption_pilot.yaml --jobs $(JOBS) $(SWEEP_ARGS)
	$(BIN)/samrl report results/corruption-pilot

# The corruption study again at the pilot's budget (15k updates, corruption drawn per run).
corruption-15k: install   ## 60 runs x 15k updates (pendulum, 64-64): about 1 h at 2 jobs
	-$(BIN)/samrl sweep configs/sweeps/corruption_15k.yaml --jobs $(JOBS) $(SWEEP_ARGS)
	$(BIN)/samrl corruption-table results/corruption-15k
	$(BIN)/samrl report results/corruption-15k

# MuJoCo evidence (issue 30). The SAC behaviour policies samrl ships (samrl/data/policies/) were
# made by `make mujoco-policies`: 100k SAC steps per environment, resumable after a kill (about
# 40 min per environment on an idle core, 1.5 h beside other work). Datasets roll them out in
# minutes on first use; the pilot chooses the study's budget on seeds the study never uses.
mujoco-policies: install   ## hopper's seed 0 did not learn in 100k steps; seed 1 did (README)
	$(BIN)/python scripts/train_behaviour_policies.py halfcheetah --steps 100000 --seed 0
	$(BIN)/python scripts/train_behaviour_policies.py hopper --steps 100000 --seed 1
	$(BIN)/python scripts/export_behaviour_policies.py halfcheetah --steps 100000 --seed 0
	$(BIN)/python scripts/export_behaviour_policies.py hopper --steps 100000 --seed 1

mujoco-pilot: install   ## 8 + 4 Adam runs x 40k updates (TD3+BC, IQL x hopper-, halfcheetah-medium x seeds 100, 101; then IQL with scaled rewards)
	-$(BIN)/samrl sweep configs/sweeps/mujoco_pilot.yaml --jobs $(JOBS) $(SWEEP_ARGS)
	$(BIN)/samrl report results/mujoco-pilot
	-$(BIN)/samrl sweep configs/sweeps/mujoco_pilot_iql.yaml --jobs $(JOBS) $(SWEEP_ARGS)
	$(BIN)/samrl report results/mujoco-pilot-iql

# The MuJoCo study (issue 30): TD3+BC, IQL x halfcheetah-, hopper-medium x Adam / SAM on the
# critic / SAM on the actor (rho 0.05) x 5 seeds = 60 runs of 30k updates (the pilot's budget).
mujoco: install   ## 60 runs x 30k updates (256-256 networks, batch 256) at 2 jobs
	-$(BIN)/samrl sweep configs/sweeps/mujoco_study.yaml --jobs $(JOBS) $(SWEEP_ARGS)
	$(BIN)/samrl seed-table results/mujoco
	$(BIN)/samrl report results/mujoco

# The published corruption claim on MuJoCo: IQL, Adam / SAM on the critic, halfcheetah-medium
# with 30% of observations corrupted (rate 0.3, scale 1.0), 5 seeds; clean cells from the study.
mujoco-corruption: install   ## 10 runs x 30k updates; run `make mujoco` first
	-$(BIN)/samrl sweep configs/sweeps/mujoco_corruption.yaml --jobs $(JOBS) $(SWEEP_ARGS)
	$(BIN)/samrl corruption-table results/mujoco-corruption --also results/mujoco
	$(BIN)/samrl report results/mujoco-corruption

reproduce-mujoco: install   ## 135 runs x 100k steps: ~340 CPU-core-hours (estimate) as a Slurm job array
	BIN=$(BIN) scripts/reproduce.sh configs/sweeps/mujoco.yaml runs/sweeps/mujoco $(SWEEP_ARGS)

# D4RL study: 8 sweeps (CQL, IQL, TD3+BC, BC x SAM / Adam-probe) x 9 datasets x 5 seeds = 360
# runs of 500k steps, as Slurm job arrays (SWEEP_ARGS="--launcher ray --address auto" for Ray).
# The 9 D4RL files (a few GB) are downloaded first, here, so cluster nodes never download.
# Cost, measured as CPU time per update on one torch thread (hopper dims, loaded 2-core box,
# so approximate): CQL 291 ms SAM / 133 ms Adam-probe, IQL 30 / 19, TD3+BC 22 / 11, BC 3 / 2.
# That is 500k steps = CQL 40 / 18 h, IQL 4.1 / 2.6 h, TD3+BC 3.1 / 1.5 h, BC 0.4 / 0.2 h per
# run, about 3,200 CPU-core-hours for all 360 runs (CQL: 83%), plus evaluation rollouts (50 x
# 10 episodes per run). GPU rates were not measured here (no GPU); use the Slurm GPU launcher.
D4RL_DATASETS := $(foreach e,hopper halfcheetah walker2d,$(foreach l,medium medium-replay medium-expert,d4rl:$(e)-$(l)-v2))
reproduce-d4rl: install   ## 360 runs x 500k steps: ~3,200 CPU-core-hours (Slurm job arrays)
	$(BIN)/samrl data download $(D4RL_DATASETS)
	-for f in configs/sweeps/d4rl/*.yaml; do $(BIN)/samrl sweep $$f $(SWEEP_ARGS); done
	for f in configs/sweeps/d4rl/*.yaml; do $(BIN)/samrl report runs/sweeps/d4rl_$$(basename $$f .yaml); done

clean:
	rm -rf $(VENV) runs .pytest_cache

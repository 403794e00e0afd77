#!/usr/bin/env bash
# HRNetV2-W48 on ToyCity 1024x2048 (configs/toycity/evidence_hrnet_w48.py) on one GPU: top-left nearest,
# centred nearest and soft bilinear labels at 1/8 and 1/4, seed 0, two runs side by side; then the same
# points on CamVid (configs/camvid/hrnet_w48.py, test and val) when it is under $SOFTLABELSEG_DATASETS/camvid,
# and then the pretrained CamVid grid (results/camvid_pretrained_grid.sh: EfficientNet-Lite0, three
# targets x 1/8, 1/4, 1/2, full resolution and the from-scratch control, seeds in $SEEDS, default 0 1 2).
#
#   bash results/hrnet_w48_gpu.sh RESULTS_DIR [key=value ...]
#
# Run from the repository root with the project installed (README). Trailing overrides go to every run
# (e.g. train.max_iter=300). Timings are printed as it goes; RESULTS_DIR gets, for each dataset (file
# prefix toycity_ or camvid_), the table (ablation.md), the runner logs and runs.tar.gz (each run's config,
# log, metrics and evaluation JSON; no checkpoints), and camvid_pretrained_runs.tar.gz. Runs are kept in
# output/evidence_hrnet_w48, output/camvid_hrnet_w48 and output/camvid_pretrained: running it again resumes.
# The trailing overrides go to the HRNetV2-W48 runs only; the pretrained grid runs its recipe as written.
set -uo pipefail
RESULTS=${1:?usage: hrnet_w48_gpu.sh RESULTS_DIR [key=value ...]}
shift
OVERRIDES=("$@")
C=projects/SoftLabelSeg/configs/toycity/evidence_hrnet_w48.py
R=output/evidence_hrnet_w48
GRID=(--variants nearest_topleft nearest soft --factors 1/8 1/4 --seeds 0)
CEILINGS=results/retention_toycity/toycity_1024x2048_sem_seg_val_summary.csv
PY=${PYTHON:-python3}  # the interpreter that has the project's requirements
mkdir -p "$RESULTS"
export PYTHONUNBUFFERED=1
t0=$SECONDS
stamp() { echo "[$((SECONDS - t0)) s] $*"; }

$PY - <<'EOF' || exit 1
import torch
print("torch", torch.__version__, "cuda", torch.version.cuda,
      torch.cuda.get_device_name(0) if torch.cuda.is_available() else "NO CUDA DEVICE")
assert torch.cuda.is_available(), "this script needs a CUDA GPU"
EOF

stamp "CUDA test of the resampling ops"
$PY -m pytest -q -p no:cacheprovider tests/test_ops_resample.py -k cuda 2>&1 | tail -n 3

stamp "ToyCity 1024x2048 (generated on first use, worker processes)"
SOFTLABELSEG_TOYCITY_WORKERS=${SOFTLABELSEG_TOYCITY_WORKERS:-$(nproc)} $PY -c "
from softlabelseg.data import DatasetCatalog
for split in ('train', 'val'):
    print(split, len(DatasetCatalog.get(f'toycity_1024x2048_sem_seg_{split}')), 'records')
" || exit 1

# grid NAME CONFIG OUTPUT CEILINGS [extra runner args]: train in two lanes, aggregate, pack the results.
grid() {
  local name=$1 config=$2 out=$3 ceilings=$4
  shift 4
  local extra=("$@") ceil=()
  mkdir -p "$out"
  stamp "${name%_}: training, two runs at a time"
  for lane in 0 1; do
    $PY tools/run_ablation.py --config-file "$config" "${GRID[@]}" "${extra[@]}" --lane $lane/2 --output "$out" \
        "${OVERRIDES[@]}" > "$RESULTS/${name}lane$lane.log" 2>&1 &
  done
  wait  # each lane exits 2 while the other lane's points are unfinished: the table below decides
  stamp "${name%_}: runs finished"
  grep -h "\[done\]\|failed" "$RESULTS/${name}"lane*.log
  [ -f "$ceilings" ] && ceil=(--ceilings "$ceilings")
  $PY tools/run_ablation.py --config-file "$config" "${GRID[@]}" "${extra[@]}" --output "$out" --aggregate-only \
      "${ceil[@]}" > "$RESULTS/${name}aggregate.log" 2>&1
  local rc=$?
  cp "$out/ablation.md" "$RESULTS/${name}ablation.md" 2>/dev/null
  (cd "$out" && tar czf - --exclude='*.pth' --exclude=last_checkpoint --exclude='events.out.*' */) \
      > "$RESULTS/${name}runs.tar.gz"
  cat "$RESULTS/${name}aggregate.log"
  return $rc
}

grid toycity_ $C $R $CEILINGS
status=$?

CAMVID=$($PY -c "from softlabelseg.data.catalog import dataset_root; print(dataset_root() / 'camvid')")
if [ -d "$CAMVID" ]; then
  grid camvid_ projects/SoftLabelSeg/configs/camvid/hrnet_w48.py output/camvid_hrnet_w48 \
      results/retention_camvid/camvid_sem_seg_test_summary.csv --also-eval camvid_sem_seg_val
  status=$((status ? status : $?))
  stamp "CamVid, pretrained EfficientNet-Lite0 grid: two lanes"
  for lane in 0 1; do
    PYTHON=$PY bash results/camvid_pretrained_grid.sh output/camvid_pretrained $lane/2 \
        train.device=cuda dataloader.train.num_workers=4 > "$RESULTS/camvid_pretrained_lane$lane.log" 2>&1 &
  done
  wait
  stamp "CamVid, pretrained grid: runs finished"
  grep -h "\[done\]\|failed" "$RESULTS"/camvid_pretrained_lane*.log
  (cd output/camvid_pretrained && tar czf - --exclude='*.pth' --exclude=last_checkpoint --exclude='events.out.*' \
      */*/) > "$RESULTS/camvid_pretrained_runs.tar.gz"
else
  stamp "CamVid skipped: no $CAMVID (docs/datasets.md says how to get it)"
fi
stamp "done (aggregate exit $status)"
exit $status

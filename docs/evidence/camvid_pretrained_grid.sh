#!/usr/bin/env bash
# The pretrained CamVid grid (configs/camvid/effnet_lite0_deeplab.py: DeepLabV3+ on ImageNet EfficientNet-Lite0),
# fixed before it runs, seed by seed (every point of seed 0 first), each point scored on test and val:
#   pretrained   {top-left nearest, centred nearest, soft bilinear} x {1/8, 1/4, 1/2}
#   full_res     training at 1/1 (360x480, the native labels), the reference of the budget frontier
#   scratch      the same network from random init at 1/4, centred nearest and soft bilinear
#
#   bash docs/evidence/camvid_pretrained_grid.sh OUTPUT_ROOT LANE/LANES [key=value ...]
#
# Run one process per lane (OMP_NUM_THREADS=1 each on a CPU); trailing overrides go to every run (on a GPU:
# dataloader.train.num_workers=4). Finished points are skipped and interrupted ones resume, so running it
# again continues the grid. SEEDS (default "0 1 2") picks the seeds. Tabulate with tools/make_report.py.
set -uo pipefail
ROOT=${1:?usage: camvid_pretrained_grid.sh OUTPUT_ROOT LANE/LANES [key=value ...]}
LANE_SPEC=${2:?usage: camvid_pretrained_grid.sh OUTPUT_ROOT LANE/LANES [key=value ...]}
shift 2
LANE=${LANE_SPEC%/*}
LANES=${LANE_SPEC#*/}
C=projects/SoftLabelSeg/configs/camvid/effnet_lite0_deeplab.py
PY=${PYTHON:-python3}
SCRATCH=(model.backbone.weights=null "model.pixel_mean=[127.5,127.5,127.5]" "model.pixel_std=[127.5,127.5,127.5]")

# point LANE_OFFSET OUTPUT [runner args]: one runner invocation; a small grid's points rotate over the lanes
point() {
  local offset=$1 out=$2
  shift 2
  $PY tools/run_ablation.py --config-file $C --also-eval camvid_sem_seg_val --lane $(((LANE + offset) % LANES))/$LANES \
      --output "$ROOT/$out" "$@"
  local rc=$?
  [ $rc -le 2 ] || echo "runner exit $rc in $ROOT/$out" >&2  # 2: points of other lanes unfinished
}

for seed in ${SEEDS:-0 1 2}; do
  point 0 pretrained --variants nearest_topleft nearest soft --factors 1/8 1/4 1/2 --seeds "$seed" "$@"
  point "$seed" full_res --variants nearest --factors 1/1 --seeds "$seed" "$@"
  point $((seed + 1)) scratch --variants nearest soft --factors 1/4 --seeds "$seed" "$@" "${SCRATCH[@]}"
done

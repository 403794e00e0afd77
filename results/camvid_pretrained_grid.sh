#!/usr/bin/env bash
# The pretrained CamVid grid (configs/camvid/effnet_lite0_deeplab.py: DeepLabV3+ on ImageNet EfficientNet-Lite0),
# fixed before it runs, seed by seed (every point of seed 0 first), each point scored on test and val:
#   pretrained   {top-left nearest, centred nearest, soft bilinear} x {1/8, 1/4, 1/2}
#   full_res     training at 1/1 (360x480, the native labels), the reference of the budget frontier
#   scratch      the same network from random init at 1/4, centred nearest and soft bilinear
#
#   bash results/camvid_pretrained_grid.sh OUTPUT_ROOT LANE/LANES [key=value ...]
#
# Run one process per lane (OMP_NUM_THREADS=1 each on a CPU); trailing overrides go to every run (on a GPU:
# dataloader.train.num_workers=4). Finished points are skipped and interrupted ones resume, so running it
# again continues the grid. SEEDS (default "0 1 2") picks the seeds. Each finished run also gets its
# prior-matched scores (tools/calibrate_prior.py, into <grid>/calibration/<run>.json), fitted by one lane.
# Tabulate with tools/make_report.py.
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

# calibrate GRID [key=value ...]: prior-matched scores of GRID's finished runs; a run is claimed by one lane
calibrate() {
  local out=$ROOT/$1 run name
  shift
  mkdir -p "$out/calibration"
  for run in "$out"/*/; do
    run=${run%/}
    name=$(basename "$run")
    [ -f "$run/model_final.pth" ] && [ ! -f "$out/calibration/$name.json" ] || continue
    mkdir "$out/calibration/.claim-$name" 2>/dev/null || continue
    echo "$LANE" > "$out/calibration/.claim-$name/lane"
    $PY tools/calibrate_prior.py --config-file "$run/config.yaml" --checkpoint "$run/model_final.pth" \
        --output "$out/calibration/$name.json" "$@" || echo "calibration of $run failed" >&2
    rm -r "$out/calibration/.claim-$name"
  done
}

# claims this lane left behind when it was stopped
grep -lx "$LANE" "$ROOT"/*/calibration/.claim-*/lane 2>/dev/null | xargs -r -n1 dirname | xargs -r rm -r

for seed in ${SEEDS:-0 1 2}; do
  point 0 pretrained --variants nearest_topleft nearest soft --factors 1/8 1/4 1/2 --seeds "$seed" "$@"
  calibrate pretrained "$@"
  point "$seed" full_res --variants nearest --factors 1/1 --seeds "$seed" "$@"
  calibrate full_res "$@"
  point $((seed + 1)) scratch --variants nearest soft --factors 1/4 --seeds "$seed" "$@" "${SCRATCH[@]}"
  calibrate scratch "$@"
done

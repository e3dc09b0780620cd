#!/bin/bash
# GPU face cell of study_best (face_resnet), as run for docs/results/study_best (T=470; the face data
# in .carry/fer.tar.gz). A first attempt also trained study_reference_vision_voice's face_cnn beside it
# and ran out of time (benchmarks/results/gpu_unfinished_cells.json).
# Run on the GPU device machine from the repository root, carrying .carry/ (the dataset as one
# .tar.gz, made with `tar -czf .carry/<name>.tar.gz -C ../shared/data <folder>`) and .whl/ (wheels of
# soundfile, cffi, pycparser, soxr, audiomentations, librosa, audioread, decorator, pooch, platformdirs,
# numpy-minmax, numpy-rms, python-stretch for Python 3.12). Results come back as a tarball under $OUT;
# unpack it into the repository and run `python benchmarks/study_cells.py` on the study folders.
set -u
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD/src PYTHONUNBUFFERED=1
mkdir -p ../shared/data && tar -xzf .carry/fer.tar.gz -C ../shared/data || exit 1
T=${T:-450}
start=$(date +%s)
timeout --kill-after=5 $T python3 -m emofuse study configs/study_best.yaml --out runs/study-best -q --only face_resnet > $OUT/face_best.log 2>&1 &

wait
echo "studies took $(( $(date +%s) - start )) s"
find runs -name log.jsonl | while read f; do echo "$f $(wc -l < $f) epochs"; done
tar -czf $OUT/face-runs.tar.gz --exclude='*.safetensors' runs
ls -la $OUT

#!/bin/bash
# The study_best voice networks left unfinished by study_gpu_voice.sh (T=330), resumed from the fold
# folders of that call carried as runs/study-best.
# Run on the GPU device machine from the repository root, carrying .carry/ (the dataset as one
# .tar.gz, made with `tar -czf .carry/<name>.tar.gz -C ../shared/data <folder>`) and .whl/ (wheels of
# soundfile, cffi, pycparser, soxr, audiomentations, librosa, audioread, decorator, pooch, platformdirs,
# numpy-minmax, numpy-rms, python-stretch for Python 3.12). Results come back as a tarball under $OUT;
# unpack it into the repository and run `python benchmarks/study_cells.py` on the study folders.
set -u
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD/src PYTHONUNBUFFERED=1
rm -rf ../shared/data/fer2013; mkdir -p ../shared/data && tar -xzf .carry/ravdess.tar.gz -C ../shared/data || exit 1
start=$(date +%s)
timeout --kill-after=5 ${T:-300} python3 -m emofuse study configs/study_best.yaml --out runs/study-best --workers 3 -q \
  --only voice_gru --only voice_cnn1d --only voice_lstm > $OUT/best2.log 2>&1
echo "took $(( $(date +%s) - start )) s"
tar -czf $OUT/voice2-runs.tar.gz --exclude='*.safetensors' runs/study-best

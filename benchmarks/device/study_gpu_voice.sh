#!/bin/bash
# GPU voice cells of study_best, study_reference_fusion and study_reference_vision_voice, three studies
# at once (T=480; .carry/ravdess.tar.gz). Only voice_crnn finished in that call; the rest of study_best
# finished in study_gpu_voice_rest.sh, the other studies did not (benchmarks/results/gpu_unfinished_cells.json).
# Run on the GPU device machine from the repository root, carrying .carry/ (the dataset as one
# .tar.gz, made with `tar -czf .carry/<name>.tar.gz -C ../shared/data <folder>`) and .whl/ (wheels of
# soundfile, cffi, pycparser, soxr, audiomentations, librosa, audioread, decorator, pooch, platformdirs,
# numpy-minmax, numpy-rms, python-stretch for Python 3.12). Results come back as a tarball under $OUT;
# unpack it into the repository and run `python benchmarks/study_cells.py` on the study folders.
set -u
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD/src PYTHONUNBUFFERED=1
mkdir -p ../shared/data && tar -xzf .carry/ravdess.tar.gz -C ../shared/data || exit 1
nvidia-smi --query-gpu=name,memory.total --format=csv
python3 -c "import torch, emofuse; print(torch.__version__, torch.cuda.is_available())"
T=${T:-500}
start=$(date +%s)
timeout --kill-after=5 $T python3 -m emofuse study configs/study_best.yaml --out runs/study-best --workers 6 -q \
  --only voice_crnn --only voice_gru --only voice_cnn1d --only voice_lstm > $OUT/best.log 2>&1 &
nice -n 5 timeout --kill-after=5 $T python3 -m emofuse study configs/study_reference_fusion.yaml --out runs/study-reference-fusion --workers 4 -q \
  --only mel_cnn --only mel_cnn_aug > $OUT/fusion.log 2>&1 &
nice -n 10 timeout --kill-after=5 $T python3 -m emofuse study configs/study_reference_vision_voice.yaml --out runs/study-reference-vision-voice --workers 4 -q \
  --only voice_lstm --only voice_gru --only voice_cnn1d > $OUT/vv.log 2>&1 &
wait
echo "studies took $(( $(date +%s) - start )) s"
tar -czf $OUT/voice-runs.tar.gz --exclude='*.safetensors' runs
tar -czf $OUT/voice-models.tar.gz runs
ls -la $OUT

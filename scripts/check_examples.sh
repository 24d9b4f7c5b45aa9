#!/usr/bin/env bash
# The example plugin packages as a user gets them: each built as a wheel, installed with
# `ftreg install` into a fresh virtual environment next to ftreg's own, its tests run there,
# then `ftreg plugins` lists them and each trains and publishes a version that `generate` uses.
# Nothing leaves this machine: ftreg and its dependencies come from the environment beside it.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-.venv/bin/python}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

"$python" -m pip wheel --quiet --no-deps --no-build-isolation --wheel-dir "$work/wheels" examples/ftreg-faq examples/ftreg-strategy-lora
"$("$python" -c 'import sys; print(sys.base_prefix)')/bin/python3" -m venv --without-pip "$work/venv"
# Next to ftreg: the fresh environment sees ftreg's packages and installs the plugins into its own.
"$work/venv/bin/python" -c 'import site; print(site.getsitepackages()[0])' | xargs -I{} sh -c "\"$python\" -c 'import site; print(site.getsitepackages()[0])' > '{}/ftreg-next-door.pth'"
ftreg=("$work/venv/bin/python" -m ftreg)
"${ftreg[@]}" install --no-deps --no-index "$work"/wheels/*.whl

export FTREG_HOME="$work/registry"
"$work/venv/bin/python" -m pytest -q -p no:cacheprovider examples/ftreg-faq/tests examples/ftreg-strategy-lora/tests
"${ftreg[@]}" plugins | grep -E '^ *(faq|lora-fp32) '
"${ftreg[@]}" train --quiet --strategy lora8bit --format faq --dataset examples/ftreg-faq/tests/shop.md --name shop --max-steps 2 --eval-split 0
"${ftreg[@]}" train --quiet --strategy lora-fp32 -o r=4 --dataset builtin:support --name fp --max-steps 2 --eval-split 0
"${ftreg[@]}" generate --adapter shop --max-new-tokens 8 "How long does delivery take?"
"${ftreg[@]}" generate --adapter fp --max-new-tokens 8 "Where is my order?"
"${ftreg[@]}" uninstall ftreg-faq ftreg-strategy-lora
echo "examples: both packages built, installed, tested, trained with and generated from"

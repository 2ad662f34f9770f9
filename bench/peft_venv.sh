#!/usr/bin/env bash
# Make (once) a Python environment for bench/peft_lora_bench.py and print its
# interpreter's path.
#
#   bench/peft_venv.sh debian   # Debian's python3-torch 1.13 (apt), HF packages from PyPI
#   bench/peft_venv.sh pypi     # a recent CPU PyTorch from PyPI
#
# The environments live outside the repository, under ${TOY_CACHE:-~/.cache/toy},
# and are reused while their package list is unchanged (a stamp file records it).
# Versions are pinned to the ones the benchmark was checked with, so a rerun
# months later measures the same software.
set -euo pipefail

kind="${1:-}"
cache="${TOY_CACHE:-$HOME/.cache/toy}"
# The Debian interpreter: the one python3-torch is installed for, and one that is
# on every Debian machine (a pyenv/conda python3 on PATH may be another version).
py=/usr/bin/python3

case "$kind" in
debian)
    # transformers 4.40 / peft 0.10 are the last lines that support torch 1.13.
    venv="$cache/peft-debian"
    spec="transformers==4.40.2 accelerate==0.29.3 gguf==0.19.0 | peft==0.10.0"
    ;;
pypi)
    venv="$cache/peft-pypi"
    # torch on PyPI is the CUDA build: it pulls ~4.5 GB of nvidia-* wheels that a
    # CPU run never uses, but `import torch` fails without them (libcufile.so.0 is
    # linked, checked with torch 2.15), so they are installed as well. PyTorch's own
    # CPU-only index would avoid that, but it is not PyPI.
    spec="torch==2.15.0 transformers==5.24.0 peft==0.21.2 gguf==0.19.0"
    free_gb=$(df -Pk "$cache" | awk 'NR == 2 { print int($4 / 1048576) }')
    if ((free_gb < 10)); then
        echo "peft_venv.sh: $free_gb GB free under $cache; the PyPI torch needs ~6 GB" >&2
        exit 1
    fi
    ;;
*)
    echo "usage: $0 debian|pypi" >&2
    exit 2
    ;;
esac

stamp="$venv/.toy-spec"
if [[ -x "$venv/bin/python" && -f "$stamp" && "$(cat "$stamp")" == "$spec" ]]; then
    echo "$venv/bin/python"
    exit 0
fi

mkdir -p "$cache"
if [[ "$kind" == debian ]]; then
    if ! "$py" -c 'import torch' 2>/dev/null; then
        echo "peft_venv.sh: $py has no torch; apt-get install python3-torch libopenblas0-pthread" >&2
        exit 1
    fi
    # Without libopenblas0-pthread torch 1.13 runs on the reference BLAS and looks
    # several times slower than it is (see bench/pytorch_train_bench.py).
    if ! ldconfig -p | grep -q libopenblas; then
        echo "peft_venv.sh: warning: no OpenBLAS (apt-get install libopenblas0-pthread)" >&2
    fi
fi
if [[ "$kind" == debian ]]; then
    # --system-site-packages: Debian's torch, numpy, psutil and yaml come from apt.
    "$py" -m venv --system-site-packages "$venv"
else
    "$py" -m venv "$venv"
fi
pip=("$venv/bin/python" -m pip install --disable-pip-version-check --quiet)
echo "peft_venv.sh: installing into $venv: $spec" >&2
if [[ "$kind" == debian ]]; then
    # peft requires torch>=1.13.0, and Debian's reports 1.13.0a0, a pre-release that
    # sorts below it: with dependencies pip would pull a PyPI torch on top. Its
    # other requirements come with transformers/accelerate.
    # shellcheck disable=SC2086  # word splitting of the package lists is wanted
    "${pip[@]}" ${spec%%|*} >&2
    # shellcheck disable=SC2086
    "${pip[@]}" --no-deps ${spec#*|} >&2
else
    # shellcheck disable=SC2086
    "${pip[@]}" $spec >&2
fi
"$venv/bin/python" -c 'import torch, transformers, peft, gguf' >&2
echo "$spec" >"$stamp"
echo "$venv/bin/python"

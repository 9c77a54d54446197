#!/usr/bin/env bash
# bench/gpu.sh: the prepared benchmark for a machine with an NVIDIA GPU (Vulkan
# driver present, PyTorch with CUDA installed, no network). It unpacks Deno from
# a compressed copy carried in the working tree, checks our results against
# float64 sums and PyTorch on that GPU, and times matmul 1024-8192, conv2d and
# the ResNet-18 and BERT-mini training steps against PyTorch eager (f32, TF32
# off), after `deno task tune` has chosen the matmul tiles for that GPU,
# writing the table to $OUT (or bench/results/) with the GPU named.
#
# Prepare once on this machine (both paths are ignored by git, so they travel
# only when named in the device tool's `carry`):
#   mkdir -p .gpu && xz -T0 -9 < "$(readlink -f "$(command -v deno)")" > .gpu/deno.xz
#   echo /.gpu/ >> .git/info/exclude
#   and the Vulkan loader as .gl/*.deb (see the device tool's README).
# Then run it there with carry [".gpu", ".gl"] and a timeout of 600 s:
#   bash bench/gpu.sh
# It is sized to finish in about 8 minutes; each part has its own time limit
# and a part that fails or runs out of time leaves its line in the log.
set -uo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-bench/results}"
mkdir -p "$out"
log="$out/gpu-log.txt"
: >"$log"
say() { echo "$@" | tee -a "$log"; }

# The Vulkan loader (carried as .deb files) and NVIDIA's ICD.
if ! ldconfig -p | grep -q libvulkan.so.1; then
  for f in .gl/*.deb; do [ -e "$f" ] && dpkg -x "$f" /; done
  ldconfig
fi
[ -e /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json ] &&
  export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json

# Deno from the carried copy, unless one is installed.
if ! command -v deno >/dev/null; then
  mkdir -p /tmp/deno-bin
  xz -d <.gpu/deno.xz >/tmp/deno-bin/deno && chmod +x /tmp/deno-bin/deno
  export PATH="/tmp/deno-bin:$PATH"
fi
export DENO_DIR=/tmp/deno-dir DENO_WEBGPU_BACKEND=vulkan PYTHONUNBUFFERED=1
# The Python with torch (vs_torch.ts picks the same way).
py=python3
python3 -c 'import torch' 2>/dev/null || py=/usr/bin/python3
say "deno: $(deno --version | head -1); $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>&1 | head -1)"
say "torch: $($py -c 'import torch; print(torch.__version__, torch.cuda.get_device_name(0))' 2>&1 | tail -1)"

# Correctness first: the engine's self-check and a few op suites on this adapter.
timeout 150 deno test -A --no-check tests/engine/ops/matmul_test.ts tests/engine/ops/conv_test.ts \
  tests/engine/ops/batchnorm_test.ts tests/engine/ops/elementwise_test.ts 2>&1 |
  grep -E "^(ok|FAILED)|passed|failed" | tail -5 | tee -a "$log"

# Tile choice for this GPU (the table it prints goes to the log), then ours against PyTorch.
export FROST_TUNE_FILE="$out/tune.json"
timeout 90 deno run -A --no-check bench/tune.ts 2>&1 | tee -a "$log" | tail -12
timeout 330 deno run -A --no-check bench/vs_torch.ts --device cuda --python "$py" --rounds 3 --steps 3 \
  --only matmul1024,matmul2048,matmul4096,matmul8192,conv,resnet16,bert \
  --json "$out/gpu-vs-torch.json" 2>>"$log" | tee "$out/gpu-vs-torch.md"
say "exit: $?"

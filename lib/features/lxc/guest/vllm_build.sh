# Build vLLM from source against the venv's PyTorch.
# Arguments: <venv> <source directory> <repository URL> <git ref> <CUDA arch list> <parallel jobs>
venv=$1
src=$2
# A clone left behind by an earlier failed build made `git clone` fail for
# good; this path only runs when vLLM is not installed, so start afresh.
rm -rf "$src"
git clone "$3" "$src"
cd "$src"
git checkout "$4"
export TORCH_CUDA_ARCH_LIST="$5" VLLM_FLASH_ATTN_VERSION=2 MAX_JOBS="$6" CMAKE_BUILD_PARALLEL_LEVEL="$6"
"$venv/bin/python" use_existing_torch.py
"$venv/bin/pip" install -r requirements/build.txt
"$venv/bin/pip" install --no-build-isolation -e .
"$venv/bin/vllm" --version

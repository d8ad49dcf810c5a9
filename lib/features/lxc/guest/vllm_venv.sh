# The vLLM virtualenv and the PyTorch build it compiles against.
# Arguments: <venv directory> <PyTorch wheel index URL>
venv=$1
mkdir -p "$venv"
python3.11 -m venv "$venv"
"$venv/bin/pip" install --upgrade pip
"$venv/bin/pip" install --pre torch torchvision torchaudio --index-url "$2"

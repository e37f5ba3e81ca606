"""A trained checkpoint back to GGUF, so ``gguf:PATH`` evaluates it at llama.cpp speed.

``export_gguf`` copies the base GGUF the checkpoint was trained from (the embedded Q4_K_M model by
default) and replaces only the tensors whose values changed (the trained layers) with F16/F32 ones:
metadata, tokenizer and the untouched quantized tensors stay byte for byte; llama.cpp reads a file
of mixed tensor types. "Changed" is decided exactly: the checkpoint's tensor against the base's, as
the trainer started from it (its HF form ``base_hf`` when given, as ``export_hf()`` wrote it, else
the GGUF tensor dequantized; the two are bit-identical for the embedded model, measured).

``hf_to_gguf`` writes a whole checkpoint (every tensor F32/F16) with a template GGUF's tokenizer and
chat template: the starting GGUF of a model that has none (the tests' tiny random Qwen2).

HF names map to GGUF names through the ``gguf`` package's tensor-name map. Qwen2 needs no Q/K
permutation (llama.cpp permutes only LLaMA-style rotary layouts): the dequantized base tensors equal
the HF export's bit for bit, and the tests compare llama.cpp's logits to transformers'.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from inftool_env.errors import InftoolError

SUPPORTED = ("qwen2",)  # architectures whose HF and GGUF tensors match without permutation (checked)
DTYPES = ("f16", "f32")


@dataclass(frozen=True)
class ExportResult:
    path: Path
    replaced: tuple[str, ...]  # GGUF tensor names written from the checkpoint
    kept: int  # tensors copied byte for byte from the base
    seconds: float


def export_gguf(
    checkpoint: str | Path,
    out_file: str | Path,
    base_gguf: str | Path | None = None,
    *,
    base_hf: str | Path | None = None,
    dtype: str = "f16",
) -> ExportResult:
    """Write ``out_file``: the base GGUF with the tensors the checkpoint changed replaced. ``dtype`` is
    for replaced matrices (vectors are always F32, as llama.cpp wants norms and biases)."""
    import gguf
    import numpy as np

    started = time.perf_counter()
    base_path = _base(base_gguf)
    if base_hf is None and base_gguf is None:
        base_hf = _embedded_hf()
    weights = _Checkpoint(Path(checkpoint))
    reader = gguf.GGUFReader(base_path)
    arch = _arch(reader, base_path)
    names = _gguf_names(weights, arch, base_path)
    reference = _Checkpoint(Path(base_hf)) if base_hf is not None else None
    _check_dtype(dtype)
    writer, partial = _writer(reader, out_file)
    replaced: list[str] = []
    for tensor in reader.tensors:
        hf_name = names.get(tensor.name)
        if hf_name is None:
            raise InftoolError(f"{checkpoint}: no tensor for {tensor.name} of {base_path.name}")
        new = weights.get(hf_name)
        old = (
            reference.get(hf_name) if reference is not None else gguf.quants.dequantize(tensor.data, tensor.tensor_type)
        )
        if new.shape != old.shape:
            raise InftoolError(f"{checkpoint}: {hf_name} has shape {list(new.shape)}, the base {list(old.shape)}")
        if np.array_equal(new, old):
            writer.add_tensor(tensor.name, tensor.data, raw_shape=tensor.data.shape, raw_dtype=tensor.tensor_type)
        else:
            writer.add_tensor(tensor.name, _encode(new, dtype))
            replaced.append(tensor.name)
    _finish(writer, partial, out_file)
    return ExportResult(Path(out_file), tuple(replaced), len(reader.tensors) - len(replaced),
                        time.perf_counter() - started)  # fmt: skip


def hf_to_gguf(checkpoint: str | Path, out_file: str | Path, template_gguf: str | Path | None = None,
               *, dtype: str = "f32") -> Path:  # fmt: skip
    """Every tensor of a Qwen2 checkpoint, the architecture from its config, the tokenizer and chat
    template from ``template_gguf`` (the embedded model's by default; the vocabularies must agree)."""
    import gguf

    template = _base(template_gguf)
    weights = _Checkpoint(Path(checkpoint))
    config = weights.config
    if config.get("model_type") not in SUPPORTED:
        raise InftoolError(f"{checkpoint}: model_type {config.get('model_type')!r}; GGUF export supports {SUPPORTED}")
    _check_dtype(dtype)
    reader = gguf.GGUFReader(template)
    tokens = reader.fields["tokenizer.ggml.tokens"]
    if len(tokens.data) > int(config["vocab_size"]):
        raise InftoolError(
            f"{checkpoint}: vocab_size {config['vocab_size']} < the template's {len(tokens.data)} tokens"
        )
    arch = "qwen2"
    keys = gguf.Keys
    dims: dict[str, tuple[Any, gguf.GGUFValueType]] = {
        keys.LLM.BLOCK_COUNT.format(arch=arch): (config["num_hidden_layers"], gguf.GGUFValueType.UINT32),
        keys.LLM.CONTEXT_LENGTH.format(arch=arch): (config["max_position_embeddings"], gguf.GGUFValueType.UINT32),
        keys.LLM.EMBEDDING_LENGTH.format(arch=arch): (config["hidden_size"], gguf.GGUFValueType.UINT32),
        keys.LLM.FEED_FORWARD_LENGTH.format(arch=arch): (config["intermediate_size"], gguf.GGUFValueType.UINT32),
        keys.Attention.HEAD_COUNT.format(arch=arch): (config["num_attention_heads"], gguf.GGUFValueType.UINT32),
        keys.Attention.HEAD_COUNT_KV.format(arch=arch): (config["num_key_value_heads"], gguf.GGUFValueType.UINT32),
        keys.Rope.FREQ_BASE.format(arch=arch): (_rope_theta(config), gguf.GGUFValueType.FLOAT32),
        keys.Attention.LAYERNORM_RMS_EPS.format(arch=arch): (config["rms_norm_eps"], gguf.GGUFValueType.FLOAT32),
    }
    writer, partial = _writer(reader, out_file, skip=lambda k: k.startswith(f"{arch}.") or k == "general.file_type")
    for key, (value, vtype) in dims.items():
        writer.add_key_value(key, value, vtype)
    names = _gguf_names(weights, gguf.MODEL_ARCH.QWEN2, template, need_all=False)
    for gguf_name, hf_name in names.items():
        writer.add_tensor(gguf_name, _encode(weights.get(hf_name), dtype))
    _finish(writer, partial, out_file)
    return Path(out_file)


# -- pieces ------------------------------------------------------------------------------------------
class _Checkpoint:
    """An HF directory's config and tensors (safetensors, one file or sharded), read lazily as fp32."""

    def __init__(self, path: Path) -> None:
        if not (path / "config.json").is_file():
            raise InftoolError(f"{path} is not an HF model directory (no config.json)")
        files = sorted(path.glob("*.safetensors"))
        if not files:
            raise InftoolError(f"{path} holds no .safetensors weights")
        from safetensors import safe_open

        self.path, self.config = path, json.loads((path / "config.json").read_text())
        self._where: dict[str, Any] = {}
        self._files = [safe_open(str(f), "pt") for f in files]
        for handle in self._files:
            for key in handle.keys():  # noqa: SIM118 - safetensors handles are not mappings
                self._where[key] = handle

    def keys(self) -> Iterator[str]:
        return iter(self._where)

    def get(self, name: str) -> Any:
        if name not in self._where and name == "lm_head.weight" and self.config.get("tie_word_embeddings"):
            name = "model.embed_tokens.weight"  # tied: the output matrix is the embedding
        if name not in self._where:
            raise InftoolError(f"{self.path}: no tensor {name}")
        return self._where[name].get_tensor(name).float().numpy()


def _base(base_gguf: str | Path | None) -> Path:
    if base_gguf is None:
        from inftool_env.llm.embedded import embedded_gguf

        return embedded_gguf()
    path = Path(base_gguf)
    if not path.is_file():
        raise InftoolError(f"base GGUF {path}: no such file")
    return path


def _embedded_hf() -> Path | None:
    """The embedded model's HF export when it is cached (a fast, exact reference); else None."""
    from inftool_env.llm.embedded import cache_dir

    hf = cache_dir() / "hf"
    return hf if (hf / "model.safetensors").is_file() else None


def _arch(reader: Any, path: Path) -> Any:
    import gguf

    field = reader.fields.get("general.architecture")
    name = field.contents() if field is not None else None
    if name not in SUPPORTED:
        raise InftoolError(f"{path.name}: architecture {name!r}; GGUF export supports {', '.join(SUPPORTED)}")
    return next(a for a, n in gguf.MODEL_ARCH_NAMES.items() if n == name)


def _gguf_names(weights: _Checkpoint, arch: Any, where: Path, *, need_all: bool = True) -> dict[str, str]:
    """GGUF tensor name -> the checkpoint's tensor name (``output.weight`` from the embedding if tied)."""
    import gguf

    blocks = int(weights.config.get("num_hidden_layers", 0))
    mapping = gguf.get_tensor_name_map(arch, blocks)
    out: dict[str, str] = {}
    for hf_name in weights.keys():
        name = mapping.get_name(hf_name, try_suffixes=(".weight", ".bias"))
        if name is None:
            raise InftoolError(f"{weights.path}: tensor {hf_name} has no GGUF name for {where.name}'s architecture")
        out[name] = hf_name
    if "output.weight" not in out and weights.config.get("tie_word_embeddings"):
        out["output.weight"] = "lm_head.weight"
    return out


def _rope_theta(config: dict[str, Any]) -> float:
    rope = config.get("rope_parameters") or {}
    return float(rope.get("rope_theta", config.get("rope_theta", 10000.0)))


def _check_dtype(dtype: str) -> None:
    if dtype not in DTYPES:
        raise InftoolError(f"dtype must be one of {', '.join(DTYPES)}, not {dtype!r}")


def _encode(values: Any, dtype: str) -> Any:
    import numpy as np

    if values.ndim == 1 or dtype == "f32":
        return np.ascontiguousarray(values, dtype=np.float32)
    return np.ascontiguousarray(values, dtype=np.float16)


def _writer(reader: Any, out_file: str | Path, skip: Any = None) -> tuple[Any, Path]:
    """A writer holding the base's metadata (every key but the ones GGUFWriter writes itself)."""
    import gguf

    arch = reader.fields["general.architecture"].contents()
    partial = Path(out_file).with_name(f"{Path(out_file).name}.partial-{os.getpid()}")
    partial.parent.mkdir(parents=True, exist_ok=True)
    writer = gguf.GGUFWriter(partial, arch)
    for key, field in reader.fields.items():
        if key.startswith("GGUF.") or key == "general.architecture" or (skip is not None and skip(key)):
            continue
        vtype = field.types[0]
        sub = field.types[-1] if vtype == gguf.GGUFValueType.ARRAY else None
        writer.add_key_value(key, field.contents(), vtype, sub_type=sub)
    if "general.alignment" in reader.fields:
        writer.data_alignment = int(reader.fields["general.alignment"].contents())
    return writer, partial


def _finish(writer: Any, partial: Path, out_file: str | Path) -> None:
    try:
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
    except BaseException:
        writer.close()
        partial.unlink(missing_ok=True)
        raise
    writer.close()
    partial.replace(out_file)  # atomic: a reader sees the old file or the whole new one

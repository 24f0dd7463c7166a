"""A real pretrained masked-LM head, offline: rxnmapper's ALBERT, converted once into a test fixture.

**What it is.** The PyPI package ``rxnmapper`` (IBM RXN for Chemistry; Schwaller et al., "Extraction of organic
chemistry grammar from unsupervised learning of chemical reactions", Science Advances 7, eabe4166, 2021) ships,
inside its wheel, the ALBERT it uses for atom mapping: ``albert_heads_8_uspto_all_1310k``, an
``AlbertForMaskedLM`` pre-trained with masked-LM on about 1.3 million reaction SMILES (USPTO). 12 layers sharing
one set of weights (one layer group), hidden size 256, embedding size 128, 8 heads, 591 tokens, about 3.2 MB of
float32 weights, with its own MLM head (``predictions``, decoder tied to the word embeddings). That head was
trained on the last layer only: the situation of Kao et al. (arXiv:2001.09309), on a model small enough for CPU
tests.

**Licence.** MIT ("Copyright 2020 RXN4Chemistry team"; ``License: MIT`` and the LICENSE file in the wheel's
``.dist-info``). The wheel itself is not redistributed here: it is fetched from PyPI into a git-ignored cache.

**Use.** Only as a test/evidence fixture (``rxn_albert`` in ``conftest.py``, ``test_rxn_albert.py``) and for the
README's measurement (``benchmarks/rxn_probe.py``); nothing under ``workflow/`` knows about it. Its text:
:func:`wheel_reactions`, the reaction SMILES quoted in the wheel's own tests and README (the only reaction text
that comes with it). rxnmapper is *not installed* (it pins ``transformers<5``): its wheel is downloaded
with ``pip download --no-deps`` and read as a zip.

**Conversion** (:func:`build_rxn_albert`), once per cache folder:

- weights: ``pytorch_model.bin`` is a pickle (torch's legacy, pre-zip format); it is read here with
  ``torch.load(..., weights_only=True)`` (tensors only, no code), loaded strictly into a transformers-5
  ``AlbertForMaskedLM`` and written with ``save_pretrained`` as ``model.safetensors``. The checkpoint already
  uses transformers-5 key names; two things differ: the pooler (``albert.pooler.*``, which rxnmapper's
  ``AlbertModel`` has and ``AlbertForMaskedLM`` does not) is dropped, and the tied decoder
  (``predictions.decoder.weight``/``.bias``, equal to ``albert.embeddings.word_embeddings.weight`` and
  ``predictions.bias``; checked) is left to the tie, as ``save_pretrained`` writes it.
- ``config.json``: a transformers-5 ``AlbertConfig`` from the architecture fields of the wheel's config
  (``hidden_act: gelu``, the erf GELU, as trained); the legacy generation fields are dropped and the old
  unimplemented ALBERT fields (``down_scale_factor``, ``gap_size``, ``net_structure_type``,
  ``num_memory_blocks``) must have their inert values.
- tokenizer: rxnmapper's ``SmilesTokenizer`` splits text with its SMILES regex (``re.findall``: characters the
  regex does not match are dropped) and looks every piece up whole in ``vocab.txt`` (``[UNK]`` if absent): its
  ``_tokenize`` does no WordPiece splitting, and the vocabulary has no ``##`` pieces. The fast tokenizer here is
  exactly that: a ``Split(regex, behavior="removed", invert=True)`` pre-tokenizer, a ``WordLevel`` model over
  ``vocab.txt`` with ``[UNK]``, no normalizer (case matters: ``c`` is aromatic carbon), ``[CLS] A [SEP]``
  (``[CLS] A [SEP] B [SEP]`` for pairs) and ``[PAD]``/``[MASK]`` as rxnmapper's vocabulary has them. The regex
  is read from the wheel's ``rxnmapper/smiles_utils.py`` (``SMI_REGEX_PATTERN``, parsed, not imported: the module
  needs RDKit). Decoding concatenates tokens (gives back the SMILES), where rxnmapper's joins them with spaces.
  rxnmapper's ``vocab.txt`` is copied beside ``tokenizer.json`` for reference.

Where the wheel comes from: ``$LAYERLENS_RXNMAPPER_WHEEL`` (the ``.whl`` or a folder holding it), else a wheel
already in the cache folder, else ``pip download --no-deps rxnmapper==<RXNMAPPER_VERSION>`` into it. Its sha256
must be :data:`RXNMAPPER_WHEEL_SHA256`. Where it cannot be had, :class:`RxnUnavailable` says why and how.
"""

from __future__ import annotations

import ast
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

RXNMAPPER_VERSION = "0.4.3"
RXNMAPPER_WHEEL = f"rxnmapper-{RXNMAPPER_VERSION}-py3-none-any.whl"
RXNMAPPER_WHEEL_SHA256 = "27876a4286881aafd286fd6f24a6a56a4ca6ba22d68e035a0ea120106c541ba5"
WHEEL_ENV = "LAYERLENS_RXNMAPPER_WHEEL"
MODEL_IN_WHEEL = "rxnmapper/models/transformers/albert_heads_8_uspto_all_1310k/"
REGEX_IN_WHEEL = "rxnmapper/smiles_utils.py"
#: bump when the conversion changes: a cached folder of another format is rebuilt
FORMAT = 1
SPECIALS = {"unk_token": "[UNK]", "cls_token": "[CLS]", "sep_token": "[SEP]", "pad_token": "[PAD]",
            "mask_token": "[MASK]"}
#: the architecture fields taken from the wheel's config.json
CONFIG_FIELDS = ("vocab_size", "embedding_size", "hidden_size", "num_hidden_layers", "num_hidden_groups",
                 "num_attention_heads", "intermediate_size", "inner_group_num", "hidden_act", "hidden_dropout_prob",
                 "attention_probs_dropout_prob", "max_position_embeddings", "type_vocab_size", "initializer_range",
                 "layer_norm_eps", "classifier_dropout_prob", "pad_token_id")
#: fields of the original ALBERT config that transformers never implemented: only their inert values are accepted
INERT_FIELDS = {"down_scale_factor": 1, "gap_size": 0, "net_structure_type": 0, "num_memory_blocks": 0}
FETCH_HINT = (f"set {WHEEL_ENV} to {RXNMAPPER_WHEEL} (or a folder holding it), or fetch it with "
              f"`pip download --no-deps --only-binary=:all: rxnmapper=={RXNMAPPER_VERSION} -d .cache/rxnmapper` "
              "(.ci/run does)")


class RxnUnavailable(RuntimeError):
    """The rxnmapper wheel cannot be had here; the message says why and how to get it."""


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def find_wheel(cache: Path, download: bool = True) -> Path:
    """The pinned rxnmapper wheel: from ``$LAYERLENS_RXNMAPPER_WHEEL``, the cache folder, or PyPI."""
    given = os.environ.get(WHEEL_ENV)
    if given:
        path = Path(given)
        if path.is_dir():
            path = path / RXNMAPPER_WHEEL
        if not path.is_file():
            raise RxnUnavailable(f"{WHEEL_ENV}={given}: no {RXNMAPPER_WHEEL} there; {FETCH_HINT}")
        return path
    path = cache / RXNMAPPER_WHEEL
    if path.is_file():
        return path
    if not download:
        raise RxnUnavailable(f"no {RXNMAPPER_WHEEL} in {cache}; {FETCH_HINT}")
    cache.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--disable-pip-version-check",
           "--retries", "1", "--timeout", "20", f"rxnmapper=={RXNMAPPER_VERSION}", "-d", str(cache)]
    try:
        run = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise RxnUnavailable(f"`pip download rxnmapper=={RXNMAPPER_VERSION}` failed ({e}); {FETCH_HINT}") from e
    if run.returncode != 0 or not path.is_file():
        tail = (run.stderr or run.stdout).strip().splitlines()[-1:] or ["no output"]
        raise RxnUnavailable(f"`pip download rxnmapper=={RXNMAPPER_VERSION}` failed (exit {run.returncode}: "
                             f"{tail[0]}); {FETCH_HINT}")
    return path


def smiles_regex(wheel: zipfile.ZipFile) -> str:
    """``SMI_REGEX_PATTERN`` from the wheel's ``smiles_utils.py``, parsed (importing it needs RDKit)."""
    tree = ast.parse(wheel.read(REGEX_IN_WHEEL).decode("utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "SMI_REGEX_PATTERN" for t in node.targets):
            return ast.literal_eval(node.value)
    raise ValueError(f"no SMI_REGEX_PATTERN in {REGEX_IN_WHEEL}")


def albert_config(original: dict, vocab: list[str]):
    """A transformers-5 AlbertConfig with the architecture of the wheel's config.json."""
    from transformers import AlbertConfig

    for field, inert in INERT_FIELDS.items():
        if original.get(field, inert) != inert:
            raise ValueError(f"{field}={original[field]} in rxnmapper's config: not expressible in transformers")
    if original.get("model_type") != "albert" or original.get("architectures") != ["AlbertForMaskedLM"]:
        raise ValueError(f"not an AlbertForMaskedLM config: {original.get('model_type')}, "
                         f"{original.get('architectures')}")
    fields = {k: original[k] for k in CONFIG_FIELDS}
    if fields["vocab_size"] != len(vocab) or vocab[fields["pad_token_id"]] != "[PAD]":
        raise ValueError("rxnmapper's config and vocab.txt disagree")
    return AlbertConfig(**fields, bos_token_id=vocab.index("[CLS]"), eos_token_id=vocab.index("[SEP]"),
                        tie_word_embeddings=True, architectures=["AlbertForMaskedLM"])


def convert_weights(state: dict, config, out: Path) -> list[str]:
    """Load ``state`` strictly into a transformers-5 AlbertForMaskedLM and save it as safetensors.

    Returns the keys dropped (the pooler); the tied decoder is checked and left to the tie."""
    import torch
    from transformers import AlbertForMaskedLM

    ties = {"predictions.decoder.weight": "albert.embeddings.word_embeddings.weight",
            "predictions.decoder.bias": "predictions.bias"}
    for key, source in ties.items():
        if key in state and not torch.equal(state[key], state[source]):
            raise ValueError(f"{key} is not tied to {source} in the checkpoint")
    dropped = sorted(k for k in state if k.startswith("albert.pooler."))
    state = {k: v for k, v in state.items() if k not in dropped}
    torch.manual_seed(0)
    model = AlbertForMaskedLM(config)
    expected = set(model.state_dict())
    missing, unexpected = sorted(expected - set(state)), sorted(set(state) - expected)
    if missing or unexpected:
        raise ValueError(f"checkpoint keys do not match AlbertForMaskedLM: missing {missing}, unexpected {unexpected}")
    model.load_state_dict(state, strict=True)
    if model.predictions.decoder.weight.data_ptr() != model.albert.embeddings.word_embeddings.weight.data_ptr():
        raise ValueError("the decoder is not tied to the word embeddings after loading")
    model.save_pretrained(str(out))
    return dropped


def fast_tokenizer(vocab: list[str], pattern: str):
    """rxnmapper's SmilesTokenizer as a PreTrainedTokenizerFast (see the module docstring)."""
    from tokenizers import Regex, Tokenizer, decoders, pre_tokenizers, processors
    from tokenizers.models import WordLevel
    from transformers import PreTrainedTokenizerFast

    ids = {t: i for i, t in enumerate(vocab)}
    if len(ids) != len(vocab):
        raise ValueError("vocab.txt has duplicate tokens")
    tok = Tokenizer(WordLevel(ids, unk_token=SPECIALS["unk_token"]))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex(pattern), behavior="removed", invert=True)
    cls, sep = SPECIALS["cls_token"], SPECIALS["sep_token"]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{cls}:0 $A:0 {sep}:0", pair=f"{cls}:0 $A:0 {sep}:0 $B:1 {sep}:1",
        special_tokens=[(cls, ids[cls]), (sep, ids[sep])])
    tok.decoder = decoders.Fuse()
    return PreTrainedTokenizerFast(tokenizer_object=tok, model_max_length=512, padding_side="right",
                                   model_input_names=["input_ids", "token_type_ids", "attention_mask"], **SPECIALS)


def wheel_reactions(cache: str | Path, download: bool = True) -> list[str]:
    """The distinct, unmapped reaction SMILES quoted in the wheel's ``tests/*.py`` and README (``METADATA``), in
    the order they first appear: string literals holding ``>>`` with something on both sides, made only of the
    SMILES regex's tokens (which leaves out the tests' deliberately invalid ones and placeholders), not starting
    with ``.`` (a fragment of a longer test string), and without atom-map numbers (``[CH3:1]``: rxnmapper's
    outputs, not its inputs)."""
    import re

    with zipfile.ZipFile(find_wheel(Path(cache).resolve(), download)) as wheel:
        texts = [wheel.read(n).decode("utf-8") for n in sorted(wheel.namelist())
                 if n.startswith("tests/") and n.endswith(".py") or n.endswith(".dist-info/METADATA")]
        regex = re.compile(smiles_regex(wheel))
    found = []
    for text in texts:
        for smiles in re.findall(r"[\"']([^\"'\s]+>>[^\"'\s]+)[\"']", text):
            whole = "".join(regex.findall(smiles)) == smiles
            if whole and not smiles.startswith(".") and not re.search(r":\d+]", smiles) and smiles not in found:
                found.append(smiles)
    return found


def build_rxn_albert(cache: str | Path, download: bool = True) -> Path:
    """The converted model folder under ``cache`` (built once, then reused); :class:`RxnUnavailable` if the
    wheel cannot be had. Beside it, ``<folder>.json`` records the wheel's version, sha256 and the conversion."""
    cache = Path(cache).resolve()
    out = cache / f"rxnmapper-{RXNMAPPER_VERSION}-albert"
    record_path = out.with_name(out.name + ".json")
    files = ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "vocab.txt")
    if record_path.is_file() and all((out / f).is_file() for f in files):
        record = json.loads(record_path.read_text())
        if record.get("format") == FORMAT and record.get("wheel_sha256") == RXNMAPPER_WHEEL_SHA256:
            return out

    import torch

    wheel_path = find_wheel(cache, download)
    digest = sha256_file(wheel_path)
    if digest != RXNMAPPER_WHEEL_SHA256:
        raise ValueError(f"{wheel_path}: sha256 {digest}, expected {RXNMAPPER_WHEEL_SHA256} "
                         f"(rxnmapper {RXNMAPPER_VERSION} from PyPI)")
    with zipfile.ZipFile(wheel_path) as wheel:
        original = json.loads(wheel.read(MODEL_IN_WHEEL + "config.json"))
        vocab_bytes = wheel.read(MODEL_IN_WHEEL + "vocab.txt")
        vocab = vocab_bytes.decode("utf-8").splitlines()
        pattern = smiles_regex(wheel)
        specials_map = json.loads(wheel.read(MODEL_IN_WHEEL + "special_tokens_map.json"))
        # tensors only: weights_only refuses any pickled object that is not a tensor or plain container
        state = torch.load(io.BytesIO(wheel.read(MODEL_IN_WHEEL + "pytorch_model.bin")), map_location="cpu",
                           weights_only=True)
    if specials_map != {k: v for k, v in SPECIALS.items()}:
        raise ValueError(f"rxnmapper's special tokens changed: {specials_map}")
    config = albert_config(original, vocab)

    cache.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=out.name + ".", dir=cache))
    try:
        dropped = convert_weights(state, config, tmp)
        fast_tokenizer(vocab, pattern).save_pretrained(str(tmp))
        (tmp / "vocab.txt").write_bytes(vocab_bytes)  # rxnmapper's own, for reference (tokenizer.json is what loads)
        if out.exists():
            shutil.rmtree(out)
        tmp.chmod(0o755)
        for f in tmp.iterdir():
            f.chmod(0o644)
        tmp.rename(out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    record = {
        "format": FORMAT,
        "source": f"rxnmapper {RXNMAPPER_VERSION} (PyPI), {MODEL_IN_WHEEL}",
        "licence": "MIT (Copyright 2020 RXN4Chemistry team)",
        "wheel": wheel_path.name,
        "wheel_path": str(wheel_path),
        "wheel_version": RXNMAPPER_VERSION,
        "wheel_sha256": digest,
        "smiles_regex": pattern,
        "dropped_keys": dropped,
        "tied_keys": {"predictions.decoder.weight": "albert.embeddings.word_embeddings.weight",
                      "predictions.decoder.bias": "predictions.bias"},
        "model_sha256": sha256_file(out / "model.safetensors"),
    }
    record_path.write_text(json.dumps(record, indent=2) + "\n")
    return out

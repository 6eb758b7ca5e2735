"""Prompt embeddings without CLIP's silent cut at 77 tokens.

A long prompt is split into chunks of 75 tokens; each chunk is wrapped in start/end tokens,
encoded on its own, and the embeddings are concatenated (the UNet's cross-attention takes
any length). This is what A1111 and compel do. The negative prompt is padded with empty
chunks to the same length, as classifier-free guidance needs.
"""

from __future__ import annotations

import torch

from .errors import EngineInputError

MAX_CHUNKS = 4  # 300 tokens: far more than a caption needs; beyond it, say so


def _chunks(tokenizer, text: str) -> list[list[int]]:
    ids = tokenizer(text, add_special_tokens=False, truncation=False, verbose=False).input_ids
    size = tokenizer.model_max_length - 2
    return [ids[i:i + size] for i in range(0, len(ids), size)] or [[]]


def _encode(tokenizer, text_encoder, chunks, device) -> torch.Tensor:
    length = tokenizer.model_max_length
    bos, eos = tokenizer.bos_token_id, tokenizer.eos_token_id
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos
    rows = [[bos] + chunk + [eos] + [pad] * (length - 2 - len(chunk)) for chunk in chunks]
    input_ids = torch.tensor(rows, device=device)
    with torch.no_grad():
        hidden = text_encoder(input_ids)[0]  # (chunks, 77, dim), after the final layer norm as in SD1.5
    return hidden.reshape(1, -1, hidden.shape[-1])


def encode_prompts(tokenizer, text_encoder, prompt: str, negative_prompt: str, device):
    """(prompt_embeds, negative_prompt_embeds), both (1, 77 * chunks, dim), and the token count."""
    positive, negative = _chunks(tokenizer, prompt), _chunks(tokenizer, negative_prompt)
    count = max(len(positive), len(negative))
    if count > MAX_CHUNKS:
        tokens = sum(len(c) for c in positive)
        raise EngineInputError(
            f"The description is too long ({tokens} tokens); keep it under {MAX_CHUNKS * 75} tokens "
            "(a few sentences)."
        )
    positive += [[]] * (count - len(positive))
    negative += [[]] * (count - len(negative))
    dtype = text_encoder.dtype
    return (
        _encode(tokenizer, text_encoder, positive, device).to(dtype),
        _encode(tokenizer, text_encoder, negative, device).to(dtype),
        sum(len(c) for c in positive),
    )

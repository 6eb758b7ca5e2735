"""Prompt embeddings without CLIP's silent cut at 77 tokens.

A long prompt is split into chunks of 75 tokens; each chunk is wrapped in start/end tokens,
encoded on its own, and the embeddings are concatenated (the UNet's cross-attention takes
any length). This is what A1111 and compel do. The negative prompt is padded with empty
chunks to the same length, as classifier-free guidance needs.
"""

from __future__ import annotations

import torch

from .checks import MAX_CHUNKS, check_prompt_length  # noqa: F401  (MAX_CHUNKS is part of this module's API)


def _encode(tokenizer, text_encoder, chunks, device) -> torch.Tensor:
    length = tokenizer.model_max_length
    bos, eos = tokenizer.bos_token_id, tokenizer.eos_token_id
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos
    rows = [[bos] + chunk + [eos] + [pad] * (length - 2 - len(chunk)) for chunk in chunks]
    input_ids = torch.tensor(rows, device=device)
    with torch.no_grad():
        hidden = text_encoder(input_ids)[0]  # (chunks, 77, dim), after the final layer norm as in SD1.5
    return hidden.reshape(1, -1, hidden.shape[-1])


def chunk_count(tokenizer, prompt: str, negative_prompt: str) -> int:
    positive, negative = check_prompt_length(tokenizer, prompt, negative_prompt)
    return max(len(positive), len(negative))


def encode_prompts(tokenizer, text_encoder, prompt: str, negative_prompt: str, device, chunks: int = 0):
    """(prompt_embeds, negative_prompt_embeds), both (1, 77 * chunks, dim), and the token count. `chunks`:
    at least this many (a composed picture's branches share one batch, so one length)."""
    positive, negative = check_prompt_length(tokenizer, prompt, negative_prompt)  # refuses > 300 tokens
    count = max(len(positive), len(negative), chunks)
    positive += [[]] * (count - len(positive))
    negative += [[]] * (count - len(negative))
    dtype = text_encoder.dtype
    return (
        _encode(tokenizer, text_encoder, positive, device).to(dtype),
        _encode(tokenizer, text_encoder, negative, device).to(dtype),
        sum(len(c) for c in positive),
    )

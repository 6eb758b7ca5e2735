"""The tests' own converter: a diffusers SD1.5 pipeline's weights written back into the original
single-file layout (CompVis/LDM key names, as `v1-5-pruned-emaonly.safetensors` has them).

It is the inverse of the mapping diffusers applies when it loads a single file, written out here so
the tests can make a real-layout checkpoint of a model whose pixels they know.
"""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import save_file

UNET, VAE, TEXT = "model.diffusion_model.", "first_stage_model.", "cond_stage_model.transformer."

UNET_RESNET = {"norm1": "in_layers.0", "conv1": "in_layers.2", "time_emb_proj": "emb_layers.1",
               "norm2": "out_layers.0", "conv2": "out_layers.3", "conv_shortcut": "skip_connection"}
VAE_ATTENTION = {"group_norm": "norm", "to_q": "q", "to_k": "k", "to_v": "v", "to_out.0": "proj_out"}


def _rename(name: str, table: dict[str, str]) -> str:
    for new, old in table.items():
        if name == new or name.startswith(new + "."):
            return old + name[len(new):]
    return name


def unet_key(key: str, layers: int) -> str:
    """diffusers UNet2DConditionModel key -> LDM UNetModel key (SD1.5: `layers` = 2 per block)."""
    top = {"time_embedding.linear_1": "time_embed.0", "time_embedding.linear_2": "time_embed.2",
           "conv_in": "input_blocks.0.0", "conv_norm_out": "out.0", "conv_out": "out.2"}
    for new, old in top.items():
        if key.startswith(new + "."):
            return old + key[len(new):]
    parts = key.split(".")
    if parts[0] == "down_blocks":
        block, kind = int(parts[1]), parts[2]
        if kind == "downsamplers":  # down_blocks.i.downsamplers.0.conv -> input_blocks.N.0.op
            return f"input_blocks.{(layers + 1) * (block + 1)}.0.op." + ".".join(parts[5:])
        index, rest = int(parts[3]), ".".join(parts[4:])
        number = (layers + 1) * block + index + 1
        if kind == "resnets":
            return f"input_blocks.{number}.0.{_rename(rest, UNET_RESNET)}"
        return f"input_blocks.{number}.1.{rest}"
    if parts[0] == "mid_block":
        kind, index, rest = parts[1], int(parts[2]), ".".join(parts[3:])
        if kind == "attentions":
            return f"middle_block.1.{rest}"
        return f"middle_block.{2 * index}.{_rename(rest, UNET_RESNET)}"
    if parts[0] == "up_blocks":
        block, kind = int(parts[1]), parts[2]
        per_block = layers + 1
        if kind == "upsamplers":  # after the block's last resnet (and attention, where there is one)
            position = 1 if block == 0 else 2
            return f"output_blocks.{per_block * block + layers}.{position}.{'.'.join(parts[4:])}"
        index, rest = int(parts[3]), ".".join(parts[4:])
        number = per_block * block + index
        if kind == "resnets":
            return f"output_blocks.{number}.0.{_rename(rest, UNET_RESNET)}"
        return f"output_blocks.{number}.1.{rest}"
    raise KeyError(key)


def vae_key(key: str, value: torch.Tensor, blocks: int) -> tuple[str, torch.Tensor]:
    """diffusers AutoencoderKL key -> LDM key; attention weights become 1x1 convolutions again."""
    parts = key.split(".")
    side = parts[0]
    if parts[0] in ("quant_conv", "post_quant_conv"):
        return key, value
    rest = ".".join(parts[1:])
    if parts[1] == "conv_norm_out":
        return f"{side}.norm_out.{'.'.join(parts[2:])}", value
    if parts[1] in ("conv_in", "conv_out"):
        return key, value
    if parts[1] == "mid_block":
        kind, index, inner = parts[2], int(parts[3]), ".".join(parts[4:])
        if kind == "attentions":
            inner = _rename(inner, VAE_ATTENTION)
            if value.ndim == 2:
                value = value[:, :, None, None]
            return f"{side}.mid.attn_1.{inner}", value
        return f"{side}.mid.block_{index + 1}.{_rename(inner, {'conv_shortcut': 'nin_shortcut'})}", value
    if parts[1] in ("down_blocks", "up_blocks"):
        block, kind = int(parts[2]), parts[3]
        level = block if side == "encoder" else blocks - 1 - block  # the decoder counts upward
        where = "down" if side == "encoder" else "up"
        if kind in ("downsamplers", "upsamplers"):
            sample = "downsample" if kind == "downsamplers" else "upsample"
            return f"{side}.{where}.{level}.{sample}.{'.'.join(parts[5:])}", value  # .conv.weight
        index, inner = int(parts[4]), ".".join(parts[5:])
        return f"{side}.{where}.{level}.block.{index}.{_rename(inner, {'conv_shortcut': 'nin_shortcut'})}", value
    raise KeyError(key)


def to_original_state_dict(pipe) -> dict[str, torch.Tensor]:
    layers = pipe.unet.config.layers_per_block
    blocks = len(pipe.vae.config.block_out_channels)
    state = {}
    for key, value in pipe.unet.state_dict().items():
        state[UNET + unet_key(key, layers)] = value
    for key, value in pipe.vae.state_dict().items():
        new_key, new_value = vae_key(key, value, blocks)
        state[VAE + new_key] = new_value
    for key, value in pipe.text_encoder.state_dict().items():
        # transformers 5 names the weights without the `text_model.` level the original file has
        state[TEXT + (key if key.startswith("text_model.") else "text_model." + key)] = value
    return state


def write_single_file(pipe, path: Path, dtype: torch.dtype = torch.float16) -> Path:
    """Write `pipe` as one .safetensors file in the original layout."""
    state = {key: value.detach().to(dtype).contiguous() for key, value in to_original_state_dict(pipe).items()}
    save_file(state, str(path))
    return path

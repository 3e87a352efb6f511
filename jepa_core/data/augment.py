"""Deterministic eval preprocessing and I-JEPA's random resized crop, batched on any device.

Both take uint8 ``[B,C,H,W]`` batches (floating input is taken as already scaled to [0, 1]) and return
normalized float32 images on the input's device.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F

__all__ = ["RandomResizedCropAug", "preprocess"]


def _to_unit_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 ``[B,C,H,W]`` -> float32 in [0, 1]; floating input is taken as already scaled."""
    if images.ndim != 4:
        raise ValueError(f"expected a [B,C,H,W] batch, got shape {tuple(images.shape)}")
    if images.dtype == torch.uint8:
        return images.to(torch.float32).div_(255.0)
    if images.is_floating_point():
        # Always a copy: callers normalize the result in place and must not touch the input.
        return images.to(torch.float32, copy=True)
    raise TypeError(f"expected uint8 or floating images, got {images.dtype}")


def _normalize_(x: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """``(x - mean) / std`` per channel of a float ``[B,C,H,W]`` batch, in place; returns ``x``."""
    if len(mean) != x.shape[1] or len(std) != x.shape[1]:
        raise ValueError(f"mean/std have {len(mean)}/{len(std)} entries for {x.shape[1]} channels")
    m = torch.tensor(mean, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
    s = torch.tensor(std, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
    return x.sub_(m).div_(s)


def preprocess(
    images_uint8: torch.Tensor,
    image_size: int,
    mean: Sequence[float],
    std: Sequence[float],
) -> torch.Tensor:
    """Deterministic eval preprocessing: scale to [0,1], resize if needed, normalize.

    Args:
        images_uint8: uint8 ``[B,C,H,W]`` on any device.
        image_size: Output side; resized bilinearly with antialiasing unless already that size.
        mean: Per-channel mean for [0,1] pixels.
        std: Per-channel std for [0,1] pixels.

    Returns:
        float32 ``[B,C,image_size,image_size]`` on the input's device.
    """
    x = _to_unit_float(images_uint8)
    if x.shape[-2:] != (image_size, image_size):
        x = F.interpolate(
            x, size=(image_size, image_size), mode="bilinear", align_corners=False, antialias=True
        )
    return _normalize_(x, mean, std)


class RandomResizedCropAug:
    """I-JEPA's augmentation, batched on the images' device: random resized crop and optional h-flip.

    Every sample gets its own crop box, expressed as one affine map and applied to the whole batch by a
    single ``F.affine_grid`` + ``F.grid_sample`` call, so the cost does not grow with Python-level loops.
    Crop boxes are continuous (sub-pixel), which is a harmless departure from torchvision's integer boxes.
    Resampling is bilinear without antialiasing, so a crop much larger than the output can alias; that is
    fine for the small datasets this serves (crops are at most ~2x the output side there).
    """

    _TRIES = 10  # like torchvision: resample a box that does not fit, then fall back to the whole image

    def __init__(
        self,
        image_size: int,
        mean: Sequence[float],
        std: Sequence[float],
        scale: tuple[float, float] = (0.3, 1.0),
        ratio: tuple[float, float] = (3 / 4, 4 / 3),
        hflip: bool = False,
    ) -> None:
        """Configure the augmentation.

        Args:
            image_size: Output side length S.
            mean: Per-channel mean for [0,1] pixels.
            std: Per-channel std for [0,1] pixels.
            scale: Range of the crop's area as a fraction of the image area.
            ratio: Range of the crop's width/height aspect ratio (sampled log-uniformly).
            hflip: Also flip each sample horizontally with probability 1/2.
        """
        if not 0 < scale[0] <= scale[1]:
            raise ValueError(f"scale must satisfy 0 < low <= high, got {scale}")
        if not 0 < ratio[0] <= ratio[1]:
            raise ValueError(f"ratio must satisfy 0 < low <= high, got {ratio}")
        self.image_size = int(image_size)
        self.mean = tuple(float(v) for v in mean)
        self.std = tuple(float(v) for v in std)
        self.scale = (float(scale[0]), float(scale[1]))
        self.ratio = (float(ratio[0]), float(ratio[1]))
        self.hflip = bool(hflip)

    def __repr__(self) -> str:
        return (
            f"RandomResizedCropAug(image_size={self.image_size}, scale={self.scale}, ratio={self.ratio}, "
            f"hflip={self.hflip})"
        )

    def _fallback_fracs(self, height: int, width: int) -> tuple[float, float]:
        """Width/height fractions of the centred fallback box for an ``height x width`` image."""
        aspect = width / height
        if aspect < self.ratio[0]:
            return 1.0, aspect / self.ratio[0]
        if aspect > self.ratio[1]:
            return self.ratio[1] / aspect, 1.0
        return 1.0, 1.0

    def _sample_theta(
        self, batch: int, height: int, width: int, generator: torch.Generator | None, device: torch.device
    ) -> torch.Tensor:
        """Affine matrices ``[B,2,3]`` mapping output coords to input coords (normalized to [-1, 1])."""
        # Draw on the generator's device (a CPU generator cannot feed CUDA sampling); without one, draw on
        # the images' device so a GPU step needs no host round trip.
        device = generator.device if generator is not None else device
        u = torch.rand(batch, self._TRIES, 5, generator=generator, device=device, dtype=torch.float64)
        area = self.scale[0] + (self.scale[1] - self.scale[0]) * u[..., 0]
        log_lo, log_hi = math.log(self.ratio[0]), math.log(self.ratio[1])
        aspect = torch.exp(log_lo + (log_hi - log_lo) * u[..., 1])
        # Fractions of the input's width/height; aspect is in pixels, as in torchvision.
        frac_w = torch.sqrt(area * aspect * height / width)
        frac_h = torch.sqrt(area / aspect * width / height)
        fits = (frac_w <= 1.0) & (frac_h <= 1.0)
        # First fitting try per sample (argmax returns the first maximum).
        pick = fits.to(torch.int8).argmax(dim=1, keepdim=True)
        found = fits.any(dim=1)
        frac_w = frac_w.gather(1, pick).squeeze(1)
        frac_h = frac_h.gather(1, pick).squeeze(1)
        pos_x = u[..., 2].gather(1, pick).squeeze(1)
        pos_y = u[..., 3].gather(1, pick).squeeze(1)
        # No try fitted: torchvision's fallback, the largest centred box whose aspect is clamped into the
        # ratio range (the whole image when the image's own aspect is inside it).
        fallback_w, fallback_h = self._fallback_fracs(height, width)
        frac_w = torch.where(found, frac_w, torch.full_like(frac_w, fallback_w))
        frac_h = torch.where(found, frac_h, torch.full_like(frac_h, fallback_h))
        pos_x = torch.where(found, pos_x, torch.full_like(pos_x, 0.5))
        pos_y = torch.where(found, pos_y, torch.full_like(pos_y, 0.5))
        # Box centre anywhere that keeps the box inside the image; half-extent in [-1,1] units is frac.
        centre_x = (1.0 - frac_w) * (2.0 * pos_x - 1.0)
        centre_y = (1.0 - frac_h) * (2.0 * pos_y - 1.0)
        flip = torch.ones(batch, dtype=torch.float64, device=device)
        if self.hflip:
            flip = torch.where(u[:, 0, 4] < 0.5, -flip, flip)
        theta = torch.zeros(batch, 2, 3, dtype=torch.float64, device=device)
        theta[:, 0, 0] = frac_w * flip
        theta[:, 0, 2] = centre_x
        theta[:, 1, 1] = frac_h
        theta[:, 1, 2] = centre_y
        return theta

    def __call__(self, images_uint8: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Augment a batch.

        Args:
            images_uint8: uint8 ``[B,C,H,W]`` on any device.
            generator: Source of randomness, on the CPU or on the images' device; the global RNG if None.

        Returns:
            Normalized float32 ``[B,C,S,S]`` on the images' device.
        """
        x = _to_unit_float(images_uint8)
        batch, channels, height, width = x.shape
        theta = self._sample_theta(batch, height, width, generator, x.device).to(
            device=x.device, dtype=x.dtype
        )
        size = (batch, channels, self.image_size, self.image_size)
        grid = F.affine_grid(theta, list(size), align_corners=False)
        # Border padding: samples stay inside the image, but edge rounding must not pull in zeros.
        out = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
        return _normalize_(out, self.mean, self.std)

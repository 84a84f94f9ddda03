"""Panoptic radiance field: TensoRF VM density and colour, plus semantic and surrogate-id MLPs on position
(optionally also reading VM grids of their own).

The grids cover the field's box (``aabb``), which can shrink to where the scene is during training
(``shrink_box``); the segmentation MLPs keep seeing positions normalised to the original scene box
(``head_aabb``), so a shrink does not move what they have learnt, while the heads' own grids are resampled with the
density and colour grids. The heads see only detached positions, so nothing they compute can send gradient into
the density or colour grids; the model additionally renders them with detached weights (gradient blocking).
"""

from __future__ import annotations

from typing import List, Literal, Optional

import torch
import torch.nn.functional as F
from jaxtyping import Float
from nerfstudio.field_components.encodings import NeRFEncoding, TensorVMEncoding
from nerfstudio.field_components.mlp import MLP
from torch import Tensor, nn

from plift_nerfstudio.fields.scene_bounds import map_unit_coordinates, resample_vm_into_box


def resolve_implementation(choice: Literal["auto", "tcnn", "torch"]) -> Literal["tcnn", "torch"]:
    """'auto' means tinycudann when it is installed and CUDA is present, plain torch otherwise; 'tcnn' asked for
    where it cannot run is refused (nerfstudio's MLP would fall back to torch with only a warning)."""
    if choice == "torch":
        return "torch"
    try:
        import tinycudann  # noqa: F401
    except ImportError as err:
        if choice == "tcnn":
            raise ValueError(f"--pipeline.model.implementation tcnn needs tinycudann, which does not import ({err}); "
                             "install it (docs/training.md) or use 'auto' or 'torch'") from None
        return "torch"
    if not torch.cuda.is_available():
        if choice == "tcnn":
            raise ValueError("--pipeline.model.implementation tcnn needs CUDA, which this machine lacks; use 'auto' or "
                             "'torch'")
        return "torch"
    return "tcnn"


def make_position_encoding(num_frequencies: int) -> nn.Module:
    """Raw xyz (paper: no positional encoding) or xyz plus ``num_frequencies`` sine/cosine bands."""
    if num_frequencies <= 0:
        return nn.Identity()
    return NeRFEncoding(
        in_dim=3, num_frequencies=num_frequencies, min_freq_exp=0, max_freq_exp=num_frequencies - 1, include_input=True
    )


def encoding_out_dim(encoding: nn.Module) -> int:
    return 3 if isinstance(encoding, nn.Identity) else encoding.get_out_dim()  # type: ignore[operator]


class SegmentationHead(nn.Module):
    """MLP from a position in [-1, 1]^3 to one score per class (or per surrogate id); with ``grid_components`` the
    MLP also reads features of a VM grid of the head's own (learnt only from this head's losses)."""

    def __init__(
        self,
        num_outputs: int,
        num_layers: int,
        layer_width: int,
        position_frequencies: int,
        implementation: Literal["tcnn", "torch"],
        zero_last_bias: bool = False,
        grid_components: int = 0,
        grid_resolution: int = 128,
    ) -> None:
        super().__init__()
        self.num_outputs = num_outputs
        self.position_encoding = make_position_encoding(position_frequencies)
        self.grid: Optional[TensorVMEncoding] = (
            TensorVMEncoding(resolution=grid_resolution, num_components=grid_components) if grid_components > 0 else None
        )
        grid_dim = self.grid.get_out_dim() if self.grid is not None else 0
        self.mlp = MLP(
            in_dim=encoding_out_dim(self.position_encoding) + grid_dim,
            num_layers=num_layers,
            layer_width=layer_width,
            out_dim=num_outputs,
            activation=nn.ReLU(),
            out_activation=None,
            implementation=implementation,
        )
        layers = getattr(self.mlp, "layers", None)  # absent in the tcnn implementation
        if zero_last_bias and layers is not None:
            nn.init.zeros_(layers[-1].bias)

    def mlp_parameters(self) -> List[nn.Parameter]:
        """The MLP's weights (the head's own grid, if any, is trained at the grids' learning rate)."""
        return list(self.mlp.parameters()) + list(self.position_encoding.parameters())

    def forward(
        self, positions: Float[Tensor, "N 3"], grid_positions: Optional[Float[Tensor, "N 3"]] = None
    ) -> Float[Tensor, "N K"]:
        """Scores (logits) per output; softmax is applied by the caller (tcnn cannot). ``positions`` are in the
        heads' fixed box, ``grid_positions`` (needed with a grid) the same points in the grids' current box."""
        if positions.shape[0] == 0:
            return positions.new_zeros(0, self.num_outputs)
        x = self.position_encoding(positions.detach())
        if self.grid is not None:
            if grid_positions is None:
                raise ValueError("a segmentation head with a grid of its own needs the grid-box positions")
            x = torch.cat([x, self.grid(grid_positions.detach())], dim=-1)
        return self.mlp(x).float()


class PanopticTensoRFField(nn.Module):
    """Density and colour from TensoRF vector-matrix grids; class and surrogate-id scores from small MLPs (optionally
    reading grids of their own, which follow the density grids' box and, scaled by ``segmentation_grid_scale``, their
    resolution)."""

    def __init__(
        self,
        aabb: Float[Tensor, "2 3"],
        num_classes: int,
        num_surrogate_ids: int,
        init_resolution: int = 128,
        density_components: int = 16,
        color_components: int = 48,
        appearance_dim: int = 27,
        density_shift: float = -10.0,
        density_scale: float = 25.0,
        color_mlp_width: int = 128,
        semantic_mlp_layers: int = 5,
        semantic_mlp_width: int = 256,
        instance_mlp_layers: int = 3,
        instance_mlp_width: int = 256,
        position_frequencies: int = 0,
        segmentation_grid_components: int = 0,
        segmentation_grid_scale: float = 1.0,
        implementation: Literal["tcnn", "torch"] = "tcnn",
    ) -> None:
        super().__init__()
        if segmentation_grid_scale <= 0:
            raise ValueError(f"segmentation_grid_scale must be positive, got {segmentation_grid_scale}")
        self.segmentation_grid_scale = segmentation_grid_scale
        self.register_buffer("aabb", aabb.clone().float())
        self.register_buffer("head_aabb", aabb.clone().float())
        self.density_shift = density_shift
        self.density_scale = density_scale
        self.density_encoding = TensorVMEncoding(resolution=init_resolution, num_components=density_components)
        self.color_encoding = TensorVMEncoding(resolution=init_resolution, num_components=color_components)
        self.appearance_basis = nn.Linear(3 * color_components, appearance_dim, bias=False)
        self.feature_encoding = NeRFEncoding(in_dim=appearance_dim, num_frequencies=2, min_freq_exp=0, max_freq_exp=2)
        self.direction_encoding = NeRFEncoding(in_dim=3, num_frequencies=2, min_freq_exp=0, max_freq_exp=2)
        color_in = appearance_dim + 3 + self.feature_encoding.get_out_dim() + self.direction_encoding.get_out_dim()
        self.color_mlp = MLP(
            in_dim=color_in,
            num_layers=3,
            layer_width=color_mlp_width,
            out_dim=3,
            activation=nn.ReLU(),
            out_activation=nn.Sigmoid(),
            implementation=implementation,
        )
        self.semantic_head = SegmentationHead(
            num_classes, semantic_mlp_layers, semantic_mlp_width, position_frequencies, implementation,
            grid_components=segmentation_grid_components, grid_resolution=self.head_grid_resolution(init_resolution),
        )
        self.instance_head = SegmentationHead(
            num_surrogate_ids, instance_mlp_layers, instance_mlp_width, position_frequencies, implementation, True,
            grid_components=segmentation_grid_components, grid_resolution=self.head_grid_resolution(init_resolution),
        )

    def head_grid_resolution(self, resolution: int) -> int:
        """Resolution of the heads' own grids when the density and colour grids have ``resolution``."""
        return max(2, round(resolution * self.segmentation_grid_scale))

    def normalise_positions(self, positions: Float[Tensor, "*bs 3"]) -> Float[Tensor, "*bs 3"]:
        """World positions to [-1, 1]^3 over the scene box."""
        lo, hi = self.aabb[0], self.aabb[1]
        return (positions - lo) / (hi - lo) * 2.0 - 1.0

    def density(self, unit_positions: Float[Tensor, "N 3"]) -> Float[Tensor, "N 1"]:
        """Volume density (>= 0); zero outside the box."""
        features = self.density_encoding(unit_positions).sum(dim=-1, keepdim=True)
        sigma = F.softplus(features + self.density_shift) * self.density_scale
        inside = (unit_positions.abs() <= 1.0).all(dim=-1, keepdim=True)
        return sigma * inside

    def rgb(self, unit_positions: Float[Tensor, "N 3"], directions: Float[Tensor, "N 3"]) -> Float[Tensor, "N 3"]:
        if unit_positions.shape[0] == 0:  # no sample carries weight (e.g. an empty scene at the start)
            return unit_positions.new_zeros(0, 3)
        features = self.appearance_basis(self.color_encoding(unit_positions))
        x = torch.cat(
            [features, self.feature_encoding(features), directions, self.direction_encoding(directions)], dim=-1
        )
        return self.color_mlp(x).float()

    def semantic_scores(self, unit_positions: Float[Tensor, "N 3"]) -> Float[Tensor, "N C"]:
        """Class scores at grid-box-normalised positions (as ``normalise_positions`` gives)."""
        return self.semantic_head(self._head_positions(unit_positions), unit_positions)

    def instance_scores(self, unit_positions: Float[Tensor, "N 3"]) -> Float[Tensor, "N K"]:
        """Surrogate-id scores at grid-box-normalised positions."""
        return self.instance_head(self._head_positions(unit_positions), unit_positions)

    def _head_positions(self, unit_positions: Float[Tensor, "N 3"]) -> Float[Tensor, "N 3"]:
        return map_unit_coordinates(unit_positions.detach(), self.aabb, self.head_aabb)

    @torch.no_grad()
    def shrink_box(self, new_aabb: Float[Tensor, "2 3"]) -> None:
        """Move every VM grid (``grid_encodings``) onto ``new_aabb`` (inside the current box), keeping their values at
        every world point inside it; density outside it becomes zero. Replaces the grid parameters: optimisers must
        be rebuilt."""
        new_aabb = new_aabb.to(self.aabb)
        for encoding in self.grid_encodings():
            resample_vm_into_box(encoding, self.aabb, new_aabb)
        self.aabb.copy_(new_aabb)

    @torch.no_grad()
    def upsample_grids(self, resolution: int) -> None:
        """Grow the density and colour grids to ``resolution`` and the heads' own grids (if any) to
        ``head_grid_resolution(resolution)`` (replaces their parameters: optimisers must be rebuilt)."""
        for encoding in (self.density_encoding, self.color_encoding):
            encoding.upsample_grid(resolution)
        for encoding in self.head_grids():
            encoding.upsample_grid(self.head_grid_resolution(resolution))

    def head_grids(self) -> List[TensorVMEncoding]:
        """The segmentation heads' own VM grids (none without ``segmentation_grid_components``)."""
        return [head.grid for head in (self.semantic_head, self.instance_head) if head.grid is not None]

    def grid_encodings(self) -> List[TensorVMEncoding]:
        """The VM grids over the grids' box: density, colour and the segmentation heads' own (if any)."""
        return [self.density_encoding, self.color_encoding, *self.head_grids()]

    @property
    def grid_resolution(self) -> int:
        return int(self.density_encoding.resolution)

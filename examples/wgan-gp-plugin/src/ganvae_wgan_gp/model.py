"""WGAN-GP (Gulrajani et al. 2017, "Improved Training of Wasserstein GANs") as a ganvae family.

What the contract asks of a family, and what each piece buys here:
- ``networks`` and ``make_optimizers``: the trainer wraps each network in DDP under torchrun, and checkpoints the
  optimisers, so training resumes bit for bit.
- ``training_step(x, optimizers, ctx)``: one step on a batch; ``ctx`` hides mixed precision, DDP and the
  optimiser calls (``ctx.optimize``, ``ctx.frozen``, ``ctx.randn``).
- ``decode`` (and the base class's N(0, I) ``prior``): sampling, evaluation (FID, precision/recall), the report,
  walks and the explorer's sliders.
- ``ema_networks`` + ``_init_ema()``: sampling uses the moving average; ``training_only_networks``: what an export
  leaves out.
Optional and not used here: ``encode`` (reconstructions, NLL bounds, the explorer's drawing pad), class
conditioning (``model.conditional``, ``--digit``).

Generator: z (Z) -> dense 7x7xC0 (for 28x28) -> 5x5 transposed convolutions up to H, batch norm + ReLU, tanh.
Critic: 5x5 strided convolutions with leaky ReLU and no batch norm (the penalty is on each sample's gradient) ->
one linear score.
"""

from __future__ import annotations

import torch
from torch import nn

from ganvae.models.base import GenerativeModel, adam
from ganvae_wgan_gp.config import WGANGPConfig


class Generator(nn.Module):
    def __init__(self, c: WGANGPConfig, image_shape: tuple[int, int, int]):
        super().__init__()
        channels, height, width = image_shape
        steps = len(c.generator_channels)
        if height % 2**steps or width % 2**steps:
            raise ValueError(f"wgan-gp: images of {height}x{width} must divide by {2 ** steps} (one doubling per "
                             f"entry of model.generator_channels)")
        self.start = (c.generator_channels[0], height // 2**steps, width // 2**steps)
        self.project = nn.Sequential(nn.Linear(c.latent_dim, self.start[0] * self.start[1] * self.start[2]),
                                     nn.BatchNorm1d(self.start[0] * self.start[1] * self.start[2]), nn.ReLU())
        layers: list[nn.Module] = []
        widths = [*c.generator_channels, channels]
        for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
            layers.append(nn.ConvTranspose2d(a, b, 5, stride=2, padding=2, output_padding=1))
            if i < len(widths) - 2:
                layers += [nn.BatchNorm2d(b), nn.ReLU()]
        self.up = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:  # (B, Z) -> (B, C, H, W) in [-1, 1]
        return torch.tanh(self.up(self.project(z).view(-1, *self.start)))


class Critic(nn.Module):
    def __init__(self, c: WGANGPConfig, image_shape: tuple[int, int, int]):
        super().__init__()
        channels, height, width = image_shape
        layers: list[nn.Module] = []
        for a, b in zip([channels, *c.critic_channels[:-1]], c.critic_channels):
            layers += [nn.Conv2d(a, b, 5, stride=2, padding=2), nn.LeakyReLU(0.2)]
        self.features = nn.Sequential(*layers, nn.Flatten())
        with torch.no_grad():
            n = self.features(torch.zeros(1, *image_shape)).shape[1]
        self.score = nn.Linear(n, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, H, W) -> (B, 1) scores (not probabilities)
        return self.score(self.features(x))


def gradient_penalty(critic: nn.Module, real: torch.Tensor, fake: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """E[(||grad D(x_hat)||_2 - 1)^2] at x_hat = eps x + (1 - eps) G(z), eps ~ U[0, 1] per sample (Gulrajani et al.
    2017, eq. 3): the 1-Lipschitz constraint of the Wasserstein critic, softly, on lines between real and fake."""
    x_hat = (eps * real + (1 - eps) * fake).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(x_hat).sum(), x_hat, create_graph=True)
    return (grad.flatten(1).norm(dim=1) - 1).pow(2).mean()


class WGANGP(GenerativeModel):
    value_range = "tanh"
    networks = ("generator", "critic")
    ema_networks = ("generator",)
    training_only_networks = ("critic",)

    def __init__(self, config: WGANGPConfig, image_shape=(1, 28, 28)):
        super().__init__(config, image_shape)
        self.generator = Generator(config, self.image_shape)
        self.critic = Critic(config, self.image_shape)
        # the generator's loss at its last update: logged on every step (a column of losses.csv), and saved in
        # checkpoints, so a run resumed between two generator steps logs what an uninterrupted one does
        self.register_buffer("last_g_loss", torch.zeros(()))
        self._init_ema()

    def make_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        c = self.config
        return {"generator": adam(self.generator.parameters(), c.lr, c.beta1, c.beta2),
                "critic": adam(self.critic.parameters(), c.lr, c.beta1, c.beta2)}

    def training_step(self, x, optimizers, ctx):
        """Algorithm 1 of Gulrajani et al. 2017, one critic iteration per trainer step: the critic minimises
        D(G(z)) - D(x) + lambda GP; every ``n_critic``-th step the generator then minimises -D(G(z))."""
        c = self.config
        b = x.shape[0]
        z = ctx.randn(b, c.latent_dim, x.device)
        # eps ~ U[0, 1] per sample: every rank draws the global batch's and keeps its slice, as ctx.randn does
        eps = torch.rand(b * ctx.world_size, 1, 1, 1, device=x.device)[ctx.rank * b : (ctx.rank + 1) * b]
        with ctx.autocast():
            fake = self.generator(z).detach()
            wasserstein = self.critic(fake).mean() - self.critic(x).mean()
            gp = gradient_penalty(self.critic, x, fake, eps)
            d_loss = wasserstein + c.gp_weight * gp
        ctx.optimize(optimizers["critic"], d_loss)
        if ctx.step % c.n_critic == c.n_critic - 1:
            z = ctx.randn(b, c.latent_dim, x.device)
            with ctx.frozen(self.critic) as critic, ctx.autocast():
                g_loss = -critic(self.generator(z)).mean()
            ctx.optimize(optimizers["generator"], g_loss)
            self.last_g_loss.copy_(g_loss.detach())
        return {"d_loss": d_loss.detach(), "g_loss": self.last_g_loss.clone(), "gp": gp.detach()}

    def decode(self, z: torch.Tensor, labels: torch.Tensor | None = None, **kwargs) -> torch.Tensor:
        return self.inference_network("generator")(z)

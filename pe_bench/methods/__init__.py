"""Estimation methods behind one interface; ``REGISTRY`` maps the stable keys to classes.

Adding a method = one module with a ``Method`` subclass + one line here.
"""

from .adam import Adam
from .base import Budget as Budget
from .base import Callbacks as Callbacks
from .base import Method as Method
from .base import StartResult as StartResult
from .cmaes import CMAES
from .cvae import ConditionalVAE
from .multistart import MultiStart
from .pso import ParticleSwarm
from .sacess import Sacess

REGISTRY: dict[str, type[Method]] = {
    MultiStart.name: MultiStart,
    ParticleSwarm.name: ParticleSwarm,
    Adam.name: Adam,
    ConditionalVAE.name: ConditionalVAE,
    CMAES.name: CMAES,
    Sacess.name: Sacess,
}

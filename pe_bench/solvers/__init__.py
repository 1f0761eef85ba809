"""How ODEs are solved: pe_bench's Rodas5 (step, linear algebra, events, the loop) and diffrax.

``simulate.py`` says *what* to solve (which conditions, from which state, to which
times); this package says *how*:

- :mod:`.rodas5`: the Rosenbrock method (tableau and one step);
- :mod:`.linalg`: the per-step linear solve, chosen by size (unrolled inverse, LU,
  banded LU after renumbering);
- :mod:`.events`: SBML event semantics (triggers, priorities, delays, persistence);
- :mod:`.integrate`: the loop (step-size control, output times, event location and
  sensitivity jumps, steady state);
- :mod:`.kvaerno5`: diffrax's Kvaerno5, for reverse-mode gradients.
"""

from .events import EventSystem as EventSystem
from .integrate import Solution as Solution
from .integrate import integrate as integrate
from .linalg import Structure as Structure

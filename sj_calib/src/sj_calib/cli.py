"""``sj-calib train | eval | convert | calibrate | sweep | configs`` (also ``torchrun -m sj_calib.cli``).

The command line is :func:`sj_common.cli.main` filled in by :data:`sj_calib.recipe.RECIPE`;
``sj-calib COMMAND --help`` lists every flag with the value the chosen ``--config`` uses.
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    from sj_common.cli import main as run

    from .recipe import RECIPE

    return run(RECIPE, argv)


if __name__ == "__main__":
    sys.exit(main())

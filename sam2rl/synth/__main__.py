"""``python -m sam2rl.synth ...`` = ``sam2rl synth ...``."""

from sam2rl.synth.cli import main

raise SystemExit(main())

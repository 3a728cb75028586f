from __future__ import annotations

from atpay_config.cli import main

if __name__ == "__main__":
    main()

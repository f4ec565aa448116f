"""Run the multi-source example: ``python -m examples.multi_source``."""

import asyncio

from examples.multi_source.app import main

if __name__ == "__main__":
    asyncio.run(main())

"""Run the e-commerce demo: ``python -m examples.ecommerce``."""

import asyncio

from examples.ecommerce.app import main

if __name__ == "__main__":
    asyncio.run(main())

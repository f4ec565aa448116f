"""Run the customers example: ``python -m examples.customers``."""

import asyncio

from examples.customers.app import main

if __name__ == "__main__":
    asyncio.run(main())

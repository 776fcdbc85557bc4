import sys

from umi_agent.passrate import main

if __name__ == "__main__":
    sys.exit(main())

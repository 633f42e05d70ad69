import sys

from graders.course.cli import main

sys.exit(main())

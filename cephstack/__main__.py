from cephstack.cli import main

raise SystemExit(main())

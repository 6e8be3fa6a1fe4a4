from clutto_bridge.cli import main

raise SystemExit(main())

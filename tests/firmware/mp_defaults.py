# smartbins firmware tests: print the firmware's config defaults (main.DEFAULTS) as JSON.
import json

import main

print(json.dumps(main.DEFAULTS))

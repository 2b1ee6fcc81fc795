"""simulator: a virtual municipality of smart bins with ground truth; see docs/simulator.md."""

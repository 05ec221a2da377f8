"""A PBXware v1 HTTP API simulator for tests, demos and load checks.

The exporter daemon never imports this package (only its demo mode, lazily), and this
package imports nothing else from `exporter`.
"""

from .app import Simulator, SimulatorOptions, start_simulator
from .state import ExtensionState, SystemState, TenantState

__all__ = [
    "ExtensionState",
    "Simulator",
    "SimulatorOptions",
    "SystemState",
    "TenantState",
    "start_simulator",
]

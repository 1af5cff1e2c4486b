"""What describes a line, apart from any run of it: the line file and its checks, the product catalogue,
the station roles and the cycle-time distributions.

The simulation (``twin.sim``), the embedded MES (``twin.mes``), the hardware loop (``twin.hil``) and the energy
site (``twin.energy``) all read a line from here; none of them needs the simulation to do so.
"""

"""The wearer: the body the watch's algorithms simulate (the Settings service writes it).

Not the wire's ``protocol.settings.UserProfile`` (whole centimetres, 0.1 kg steps, no
resting heart rate): ``watchsim.app.settings_service`` converts between the two. The sex
is the protocol's enum, restricted to the two bodies the model has equations for.
"""

from __future__ import annotations

from dataclasses import dataclass

from protocol.settings import Sex


@dataclass(frozen=True, slots=True)
class Wearer:
    age: int = 35
    sex: Sex = Sex.FEMALE
    height_cm: float = 168.0
    weight_kg: float = 65.0
    resting_hr: float = 62.0

    def __post_init__(self) -> None:
        if self.sex is Sex.UNSPECIFIED:
            raise ValueError("the model simulates a female or a male body, not an unspecified one")
        if not 5 <= self.age <= 110:
            raise ValueError(f"age {self.age} is outside 5..110 years")
        if not 80 <= self.height_cm <= 250:
            raise ValueError(f"height {self.height_cm} cm is outside 80..250")
        if not 15 <= self.weight_kg <= 300:
            raise ValueError(f"weight {self.weight_kg} kg is outside 15..300")
        if not 30 <= self.resting_hr <= 110:
            raise ValueError(f"resting heart rate {self.resting_hr} is outside 30..110 bpm")

    @property
    def hr_max(self) -> float:
        """Age-predicted maximum (Tanaka: 208 - 0.7 x age), the ceiling of the HR model."""
        return 208.0 - 0.7 * self.age

    def stride_m(self, cadence: float) -> float:
        """Step length grows with cadence: ~0.415 x height walking, ~0.65 x height running."""
        factor = 0.003917 * cadence - 0.0158
        if self.sex is Sex.FEMALE:
            factor *= 0.995
        return max(0.0, self.height_cm / 100.0 * factor)

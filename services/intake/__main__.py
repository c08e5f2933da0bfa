from services.intake.app import SPEC
from shared.service import run

run(SPEC)

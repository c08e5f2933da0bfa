from services.routing.app import SPEC
from shared.service import run

run(SPEC)

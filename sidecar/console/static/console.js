// Progressive enhancement only: every console page works without this script.
import { initAll } from "./govuk-frontend/govuk-frontend.min.js";

initAll();

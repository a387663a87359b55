// A page with no behaviour of its own (guide, messages): only the header's log-out button.
import { initPage } from "./common.js";

initPage();

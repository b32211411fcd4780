import { route as github } from "./github";
import { route as gitlab } from "./gitlab";
import { route as report } from "./report";

/** Every `/security/v1` route definition, for the OpenAPI document. */
export const SECURITY_ROUTES = [github, gitlab, report];

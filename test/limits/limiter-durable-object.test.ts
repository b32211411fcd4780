import { limiterContract } from "./limiter-contract";

limiterContract("durable-object", () => ({}));

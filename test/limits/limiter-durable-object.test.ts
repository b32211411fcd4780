import { limiterContract, testClockTime } from "./limiter-contract";

limiterContract("durable-object", () => ({}), testClockTime());

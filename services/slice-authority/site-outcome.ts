/**
 * How the slice authority names a site in a per-site outcome; the
 * interpretation itself is core's (services/core/rpc/outcome.ts).
 */
import { outcomeOf, type Outcome } from '../core/rpc/outcome.js';

/** The outcome of a failed call to the site `domain`, its reason naming the site and what to do. */
export function siteOutcome(err: unknown, domain: string): Outcome {
  return outcomeOf(err, { name: `site ${domain}`, advice: 'the site may be down — try again later or leave it out' });
}

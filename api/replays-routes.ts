import { type Request, Router } from 'express';
import { AppError, invalidRequest, notFound } from '../platform/errors.ts';
import { checkFilter, type ReplayFilter, textMatcher } from '../replay/filter.ts';
import type { Replay, ReplayStore } from '../replay/store.ts';

export interface ReplaysRouteDeps {
  store: ReplayStore;
  /** SQS queue URLs and SNS topic ARNs replays may send to; empty: replays are off. */
  allowedTargets: readonly string[];
  /** Highest rate a replay may ask for, in events/s. */
  maxRatePerSec: number;
}

/** Matching events counted for a dry run or an ETA, at most. */
const countCap = 1_000_000;

interface ReplayRequest {
  filter?: ReplayFilter;
  target: string;
  ratePerSec?: number;
  follow?: boolean;
  dryRun?: boolean;
}

/** What GET answers: the replay, with an ETA while it runs and knows how much is left. */
function view(replay: Replay) {
  const left =
    replay.eventsMatched === undefined ? undefined : Math.max(0, replay.eventsMatched - replay.eventsSent);
  return {
    ...replay,
    ...(replay.state === 'running' && left !== undefined
      ? { etaSeconds: Math.ceil(left / replay.ratePerSec) }
      : {}),
  };
}

/** POST /v1/replays, GET and DELETE /v1/replays/{id}. The OpenAPI validator checks shapes first. */
export function replaysRouter(deps: ReplaysRouteDeps): Router {
  const router = Router();
  const replayId = (req: Request) => (req.params as { id: string }).id;

  router.post('/v1/replays', async (req, res) => {
    const body = req.body as ReplayRequest;
    if (!deps.allowedTargets.includes(body.target)) {
      throw new AppError(403, 'FORBIDDEN', 'this deployment may not send replays to that target', {
        errors: [
          {
            path: '/body/target',
            message:
              deps.allowedTargets.length === 0
                ? 'replays are off: REPLAY_TARGETS lists no target'
                : `not one of the allowed targets: ${deps.allowedTargets.join(', ')}`,
          },
        ],
      });
    }
    const ratePerSec = body.ratePerSec ?? Math.min(100, deps.maxRatePerSec);
    if (ratePerSec > deps.maxRatePerSec) {
      throw invalidRequest(`ratePerSec is over this deployment's cap of ${deps.maxRatePerSec}`, [
        { path: '/body/ratePerSec', message: `at most ${deps.maxRatePerSec}` },
      ]);
    }
    const checked = checkFilter(body.filter ?? {});
    if (!checked.ok)
      throw invalidRequest(`the filter is not valid: ${checked.problems[0]?.message}`, checked.problems);
    const matched = await deps.store.countMatching(checked.filter, countCap, textMatcher(checked.filter));
    const estimate = {
      eventsMatched: matched,
      exact: matched < countCap,
      etaSeconds: Math.ceil(matched / ratePerSec),
    };
    if (body.dryRun) {
      res.json({ dryRun: true, ...estimate });
      return;
    }
    const replay = await deps.store.create({
      filter: checked.filter,
      target: body.target,
      ratePerSec,
      follow: body.follow ?? false,
      eventsMatched: matched,
    });
    res.status(201).location(`/v1/replays/${replay.id}`).json(view(replay));
  });

  router.get('/v1/replays/:id', async (req, res) => {
    const replay = await deps.store.get(replayId(req));
    if (!replay) throw notFound(`no replay ${replayId(req)}`);
    res.json(view(replay));
  });

  router.delete('/v1/replays/:id', async (req, res) => {
    const replay = await deps.store.cancel(replayId(req));
    if (!replay) throw notFound(`no replay ${replayId(req)}`);
    res.json(view(replay));
  });

  return router;
}

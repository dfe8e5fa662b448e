// The one rule that words a candidate and a whole result (src/api/messages.ts), in every way a search is decided.
import { candidateWords, CLOSEST_HEADING, resultWords } from '../src/api/messages';
import type { MatchResponse, SearchList } from '../src/api/types';
import { calibrated, storedBeforeMinConfidence } from '../test-utils/decisions';
import { body } from '../test-utils/http';

describe('candidateWords', () => {
  test('calibrated: likely from max(0.9, min_confidence), possible from min_confidence, a percentage only then', () => {
    expect(candidateWords(0.97, 0.2, 0.5, null, false)).toEqual({
      verdict: 'likely',
      percent: 97,
      text: 'Likely the person · 97%',
      label: 'Likely the person, 97 percent',
    });
    expect(candidateWords(0.9, 0.2, 0.5, null, false).verdict).toBe('likely');
    expect(candidateWords(0.62, 0.9, 0.5, null, false)).toEqual({
      verdict: 'possible',
      percent: 62,
      text: 'Possible match · 62%',
      label: 'Possible match, 62 percent',
    });
    expect(candidateWords(0.5, 0.9, 0.5, null, false).text).toBe('Possible match · 50%');
    // below the level: not a match, whatever the similarity, and no number
    expect(candidateWords(0.3, 0.99, 0.5, null, false)).toEqual({
      verdict: 'not_a_match',
      percent: null,
      text: 'Not a reliable match',
      label: 'Not a reliable match',
    });
  });

  test('the operator level moves both bands: likely never below it', () => {
    // at a level above 0.9 both bands start at the level: 0.92 is not a match there, 0.95 is likely
    expect(candidateWords(0.92, 0, 0.95, null, false).verdict).toBe('not_a_match');
    expect(candidateWords(0.95, 0, 0.95, null, false).text).toBe('Likely the person · 95%');
    expect(candidateWords(0.35, 0, 0.3, null, false).text).toBe('Possible match · 35%');
    expect(candidateWords(0.25, 0, 0.3, null, false).verdict).toBe('not_a_match');
  });

  test('the percentage is rounded down, so it never crosses into the next band', () => {
    expect(candidateWords(0.8999, 0, 0.5, null, false).text).toBe('Possible match · 89%');
    expect(candidateWords(0.57, 0, 0.5, null, false).percent).toBe(57); // 0.57 * 100 = 56.99...
    expect(candidateWords(0.9999, 0, 0.5, null, false).percent).toBe(99);
  });

  test('no_match true: never likely or possible, never a percentage (the reported case: 0.3)', () => {
    const words = candidateWords(0.3, 0.6, 0.5, null, true);
    expect(words).toEqual({ verdict: 'not_a_match', percent: null, text: 'Not a reliable match', label: 'Not a reliable match' });
    expect(words.text).not.toMatch(/Possible|30%/);
    // even where the numbers alone would say otherwise
    expect(candidateWords(0.3, 0.6, 0.2, null, true).text).toBe('Not a reliable match');
    expect(candidateWords(0.97, 0.9, 0.5, null, true).text).toBe('Not a reliable match');
    expect(candidateWords(null, 0.99, null, 0.8, true).text).toBe('Not a reliable match');
  });

  test('no search calibration: similarity against the threshold, possible at most, no percentage', () => {
    expect(candidateWords(null, 0.9, null, 0.81, false)).toEqual({
      verdict: 'possible',
      percent: null,
      text: 'Possible match',
      label: 'Possible match',
    });
    expect(candidateWords(null, 0.81, null, 0.81, false).verdict).toBe('possible');
    expect(candidateWords(null, 0.8, null, 0.81, false).verdict).toBe('not_a_match');
    expect(candidateWords(null, 0.99, null, null, false).verdict).toBe('not_a_match'); // nothing to decide by
  });

  test('a search stored before min_confidence: its pair probability is not shown or used', () => {
    expect(candidateWords(0.97, 0.9, undefined, 0.83, false).text).toBe('Possible match');
    expect(candidateWords(0.97, 0.5, undefined, 0.83, false).text).toBe('Not a reliable match');
    expect(candidateWords(0.97, 0.9, null, 0.83, false).text).toBe('Possible match');
  });

  test('over many inputs: a percentage exactly with a calibrated match, nothing a match when no_match', () => {
    const levels = [undefined, null, 0.1, 0.5, 0.7, 0.95];
    const values = [null, 0, 0.1, 0.3, 0.5, 0.62, 0.9, 0.97, 1];
    for (const level of levels)
      for (const confidence of values)
        for (const similarity of [-0.1, 0.3, 0.85])
          for (const threshold of [null, 0.8])
            for (const noMatch of [true, false]) {
              const w = candidateWords(confidence, similarity, level, threshold, noMatch);
              const isMatch = w.verdict !== 'not_a_match';
              const calibratedInput = confidence !== null && typeof level === 'number';
              if (noMatch) expect(isMatch).toBe(false);
              expect(w.percent !== null).toBe(isMatch && calibratedInput);
              expect(w.text.includes('%')).toBe(w.percent !== null);
              if (w.verdict === 'likely') expect(calibratedInput && confidence! >= Math.max(0.9, level!)).toBe(true);
              if (calibratedInput && !noMatch) expect(isMatch).toBe(confidence! >= level!);
            }
  });
});

describe('resultWords: the banner, the heading and the history line agree with the cards', () => {
  const texts = (words: ReturnType<typeof resultWords>) => words.candidates.map((c) => c.text);

  test('calibrated match', () => {
    const words = resultWords(calibrated([0.97, 0.62, 0.3, 0.05, 0.01], { name: 'Jane Doe' }));
    expect(words.noMatch).toBe(false);
    expect(words.heading).toBe('Top 5 people');
    expect(texts(words)).toEqual([
      'Likely the person · 97%',
      'Possible match · 62%',
      'Not a reliable match',
      'Not a reliable match',
      'Not a reliable match',
    ]);
    expect(words.summary).toBe('Likely the person: Jane Doe');
    expect(resultWords(calibrated([0.7, 0.2], { name: 'Jane Doe' })).summary).toBe('Possible match: Jane Doe');
  });

  test('calibrated no-match with the closest people: the reported case', () => {
    const words = resultWords(calibrated([0.3, 0.2, 0.1, 0.05, 0.01], { name: 'Jane Doe' }));
    expect(words.noMatch).toBe(true);
    expect(words.heading).toBe(CLOSEST_HEADING);
    expect(words.heading).toBe('Closest people — not a match');
    expect(texts(words)).toEqual(Array(5).fill('Not a reliable match'));
    expect(words.summary).toBe('No reliable match');
    // no_match true at a level the numbers would pass: no_match still wins
    const forced = resultWords(calibrated([0.3, 0.2], { minConfidence: 0.25, noMatch: true }));
    expect(forced.noMatch).toBe(true);
    expect(texts(forced).join(' ')).not.toMatch(/Possible|Likely|30%/);
  });

  test('no-match without people (withheld, or nobody enrolled): the banner, no heading', () => {
    const empty = { ...body<MatchResponse>('match_200_no_match'), matches: [] };
    expect(resultWords(empty)).toEqual({ noMatch: true, candidates: [], heading: null, summary: 'No reliable match' });
  });

  test('no search calibration (the recorded answers): similarity against the threshold', () => {
    const match = body<MatchResponse>('match_200');
    expect(match.min_confidence).toBeNull();
    expect(match.threshold).not.toBeNull();
    const words = resultWords(match);
    const expected = match.matches.map((m) =>
      m.similarity >= match.threshold! ? 'Possible match' : 'Not a reliable match',
    );
    expect(texts(words)).toEqual(expected);
    expect(expected[0]).toBe('Possible match'); // the recording found the person
    expect(words.noMatch).toBe(false);
    expect(words.summary).toBe(`Possible match: ${match.matches[0].name}`);

    const none = resultWords(body<MatchResponse>('match_200_no_match'));
    expect(none.noMatch).toBe(true);
    expect(none.heading).toBeNull(); // a search key is sent nobody when nothing matches
    expect(texts(none)).toEqual([]);
    const closest = resultWords({ ...match, no_match: true, threshold: 0.99 }); // an enrol key's answer
    expect(closest.heading).toBe(CLOSEST_HEADING);
    expect(new Set(texts(closest))).toEqual(new Set(['Not a reliable match']));
  });

  test('searches stored before min_confidence: the old pair probabilities are not shown', () => {
    const [noMatch, match] = storedBeforeMinConfidence().searches;
    expect('min_confidence' in noMatch.result).toBe(false);
    // the recorded bug: a no-match whose closest person had a pair probability of 0.65 ("Possible · 65%")
    expect(noMatch.result.no_match).toBe(true);
    expect(noMatch.result.matches[0].confidence).toBeGreaterThan(0.5);
    const before = resultWords(noMatch.result);
    expect(before.noMatch).toBe(true);
    expect(texts(before).join(' ')).not.toMatch(/Possible|Likely|%/);
    expect(before.summary).toBe('No reliable match');

    const after = resultWords(match.result);
    expect(match.result.matches[0].confidence).toBeGreaterThan(0.9); // read "Likely the same person · 94%" before
    expect(texts(after)[0]).toBe('Possible match');
    expect(after.summary).toBe(`Possible match: ${match.result.matches[0].name}`);
  });

  test('no_match false but nobody reaches a band: the banner, never an empty "Top" list', () => {
    const page = body<SearchList>('searches_200');
    const stored = page.searches.find((s) => !s.result.no_match)!;
    const noThreshold = { ...stored.result, threshold: null };
    const words = resultWords(noThreshold);
    expect(words.noMatch).toBe(true);
    expect(words.heading).toBe(CLOSEST_HEADING);
  });
});

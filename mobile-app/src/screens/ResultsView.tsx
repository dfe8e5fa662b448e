import { useState } from 'react';
import { Pressable, StyleSheet, Text, View } from 'react-native';

import { NO_MATCH_WORDS, resultWords } from '../api/messages';
import type { Results } from '../api/types';
import { GatewayImage } from '../components/GatewayImage';
import { ResultCard } from '../components/ResultCard';
import { TOUCH, useTheme } from '../components/theme';
import { useFeedback } from '../hooks/useFeedback';

interface Props {
  result: Results;
}

/** The query face (with a heatmap toggle), the no-match notice, and the ranked people, all worded by `resultWords`. */
export function ResultsView({ result }: Props) {
  const theme = useTheme();
  const [heatmap, setHeatmap] = useState(false);
  const { byPerson, send } = useFeedback(result.search_id, result.feedback);
  const canToggle = !!result.heatmap_url;
  const words = resultWords(result);

  return (
    <View style={styles.wrap}>
      <View style={styles.queryRow}>
        {heatmap && result.heatmap_url ? (
          <GatewayImage
            testID="heatmap-image"
            link={result.heatmap_url}
            label="Heatmap of the face regions that drove the match"
            style={styles.query}
          />
        ) : (
          <GatewayImage
            testID="query-image"
            link={result.image_url}
            label="The searched photo"
            style={styles.query}
          />
        )}
        {canToggle ? (
          <Pressable
            accessibilityRole="switch"
            accessibilityLabel="Show heatmap"
            accessibilityHint="Highlights the face regions that drove the match"
            aria-checked={heatmap}
            onPress={() => setHeatmap((v) => !v)}
            style={[styles.toggle, { borderColor: theme.primary, backgroundColor: heatmap ? theme.primary : 'transparent' }]}
          >
            <Text style={{ color: heatmap ? theme.onPrimary : theme.primary, fontWeight: '600' }}>
              {heatmap ? '✓ Show heatmap' : 'Show heatmap'}
            </Text>
          </Pressable>
        ) : null}
      </View>

      {words.noMatch ? (
        <View
          testID="no-match"
          accessibilityRole="alert"
          style={[styles.noMatch, { borderColor: theme.warning, backgroundColor: theme.card }]}
        >
          <Text style={[styles.noMatchTitle, { color: theme.text }]}>{NO_MATCH_WORDS}</Text>
          <Text style={{ color: theme.text }}>
            Nobody in the gallery is a reliable match for this face.
            {result.matches.length > 0
              ? ' The closest people are listed below for reference only: none of them is a match.'
              : ''}
          </Text>
        </View>
      ) : null}

      {words.heading ? (
        <Text testID="results-heading" accessibilityRole="header" style={[styles.heading, { color: theme.text }]}>
          {words.heading}
        </Text>
      ) : null}
      {result.matches.length === 0 && result.gallery_persons === 0 ? (
        <Text style={{ color: theme.muted }}>The gallery is empty: nobody is enrolled yet.</Text>
      ) : null}
      {result.matches.map((match, i) => (
        <ResultCard
          key={match.person_id}
          match={match}
          words={words.candidates[i]}
          feedback={byPerson[match.person_id]}
          onFeedback={(correct) => void send(match.person_id, correct)}
        />
      ))}
    </View>
  );
}

const styles = StyleSheet.create({
  wrap: { gap: 12 },
  queryRow: { flexDirection: 'row', gap: 12, alignItems: 'center', flexWrap: 'wrap' },
  query: { width: 160, height: 160, borderRadius: 12, backgroundColor: '#8884' },
  toggle: {
    minHeight: TOUCH,
    minWidth: TOUCH,
    paddingHorizontal: 16,
    borderRadius: 22,
    borderWidth: 2,
    alignItems: 'center',
    justifyContent: 'center',
  },
  noMatch: { borderWidth: 2, borderRadius: 12, padding: 14, gap: 6 },
  noMatchTitle: { fontSize: 18, fontWeight: '800' },
  heading: { fontSize: 20, fontWeight: '700' },
});
